import Foundation
import GraphRuntime
import Testing
import TestSupport

@Suite struct RunLockTests {
    @Test func secondHolderIsRefusedUntilTheFirstReleases() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("run.lock").path
        let first = try RunLock.acquire(path: path)
        // flock locks belong to the open file, so a second open in this process is refused like another process.
        let error = #expect(throws: RunLockError.self) { try RunLock.acquire(path: path) }
        #expect(error == .held(path: path, holderPID: getpid()))
        #expect(error?.category == .lockHeld)
        #expect(error?.category.exitCode == 5)
        #expect(error?.description.contains(path) == true)
        first.release()
        let again = try RunLock.acquire(path: path)
        again.release()
    }

    @Test func lockIsReleasedWhenTheHolderGoesAway() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("run.lock").path
        do { _ = try RunLock.acquire(path: path) } // dropped at once: deinit releases
        let lock = try RunLock.acquire(path: path)
        lock.release()
    }

    @Test func unusableLockPathIsAnIOError() {
        let error = #expect(throws: RunLockError.self) {
            try RunLock.acquire(path: "/nonexistent-dir-for-sanagraph/run.lock")
        }
        #expect(error?.category == .io)
        #expect(error?.category.exitCode == 6)
        #expect(error?.description.contains("/nonexistent-dir-for-sanagraph/run.lock") == true)
    }
}
