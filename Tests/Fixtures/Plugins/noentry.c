/* A shared library without the plugin entry point. */
int some_other_function(void) { return 7; }
