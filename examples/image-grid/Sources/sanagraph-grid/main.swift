import ImageGridNodes
import SanaGraphCLI

// `sanagraph` with the ImageGrid pack compiled in: every command, the built-in packs, plus grid.layout and
// grid.compose.
SanaGraphCLI.main(extraPacks: [ImageGridPack.self])
