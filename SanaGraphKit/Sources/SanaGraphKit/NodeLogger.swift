/// Where nodes write log messages. The host decides what is shown (the CLI prints notices and warnings, and
/// everything with `--verbose`); nodes only pick a level.
public struct NodeLogger: Sendable {
    /// Severity, lowest first (the levels of swift-log, which the CLI uses underneath).
    public enum Level: Int, Sendable, Comparable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical

        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    private let sink: @Sendable (Level, String) -> Void

    /// A logger that hands every message to `sink`.
    public init(_ sink: @escaping @Sendable (Level, String) -> Void) { self.sink = sink }

    /// A logger that drops everything (unit tests, tools).
    public static let discarding = NodeLogger { _, _ in }

    public func log(_ level: Level, _ message: @autoclosure () -> String) { sink(level, message()) }
    public func trace(_ message: @autoclosure () -> String) { sink(.trace, message()) }
    public func debug(_ message: @autoclosure () -> String) { sink(.debug, message()) }
    public func info(_ message: @autoclosure () -> String) { sink(.info, message()) }
    public func notice(_ message: @autoclosure () -> String) { sink(.notice, message()) }
    public func warning(_ message: @autoclosure () -> String) { sink(.warning, message()) }
    public func error(_ message: @autoclosure () -> String) { sink(.error, message()) }
}
