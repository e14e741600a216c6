// Does nothing: its start-up is the runtime's alone.
return 0;
