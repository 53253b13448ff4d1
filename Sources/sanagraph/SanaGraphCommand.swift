import ArgumentParser
import GraphRuntime

@main
struct SanaGraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sanagraph", abstract: "Run SANA text-to-image workflows described as YAML node graphs.")
}
