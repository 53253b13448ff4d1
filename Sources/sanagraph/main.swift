import SanaGraphCLI

// The `sanagraph` binary: the CLI with the built-in node packs (and any plugins given at run time).
SanaGraphCLI.main()
