import Batch
import Testing

@Suite struct ShardTests {
    @Test func parsesZeroBasedIndexOfCount() throws {
        #expect(try Shard.parse("0/4") == Shard(index: 0, count: 4))
        #expect(try Shard.parse("3/4") == Shard(index: 3, count: 4))
        for bad in ["4/4", "5/4", "1/0", "-1/4", "1", "a/b", "1/4/2", "/4", " 1/4", "1/2000000"] {
            #expect(throws: BatchError.self, "\(bad)") { try Shard.parse(bad) }
        }
        do { _ = try Shard.parse("5/4") } catch { #expect("\(error)".contains("must be 0 to 3")) }
    }

    @Test func roundRobinGivesEveryItemToExactlyOneShardEvenly() {
        let shards = (0..<4).map { Shard(index: $0, count: 4) }
        var owners = [Int](repeating: 0, count: 103)
        var sizes = [Int](repeating: 0, count: 4)
        for item in 0..<103 {
            for (i, s) in shards.enumerated() where s.owns(item) {
                owners[item] += 1
                sizes[i] += 1
            }
        }
        #expect(owners.allSatisfy { $0 == 1 })
        #expect(sizes == [26, 26, 26, 25])
        #expect(Shard.all.owns(0) && Shard.all.owns(99))
    }

    @Test func kubernetesIndexedJobNeedsTheCountVariable() throws {
        let (shard, source) = try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "2", "SANAGRAPH_SHARD_COUNT": "3"])
        #expect(shard == Shard(index: 2, count: 3))
        #expect(source.contains("JOB_COMPLETION_INDEX=2"))
        do {
            _ = try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "2"])
            Issue.record("missing count accepted")
        } catch {
            #expect("\(error)".contains("SANAGRAPH_SHARD_COUNT is not set"))
        }
        #expect(throws: BatchError.self) { try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "3", "SANAGRAPH_SHARD_COUNT": "3"]) }
        #expect(throws: BatchError.self) { try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "x", "SANAGRAPH_SHARD_COUNT": "3"]) }
    }

    @Test func slurmArrayCountsFromTheArrayMinimumAndStep() throws {
        let env = ["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "3"]
        #expect(try Shard.fromEnvironment(env).shard == Shard(index: 1, count: 3))
        let stepped = ["SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4",
                       "SLURM_ARRAY_TASK_STEP": "4"]
        #expect(try Shard.fromEnvironment(stepped).shard == Shard(index: 2, count: 4))
        for missing in ["SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT"] {
            var e = env
            e[missing] = nil
            do {
                _ = try Shard.fromEnvironment(e)
                Issue.record("missing \(missing) accepted")
            } catch {
                #expect("\(error)".contains("\(missing) is not set"), "\(error)")
            }
        }
        // An irregular --array list (1,3,10) can't be numbered 0..<count.
        #expect(throws: BatchError.self) {
            try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "10", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"])
        }
    }

    @Test func kubernetesWinsAndNothingSetNamesBoth() throws {
        let both = ["JOB_COMPLETION_INDEX": "0", "SANAGRAPH_SHARD_COUNT": "2", "SLURM_ARRAY_TASK_ID": "1",
                    "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "2"]
        #expect(try Shard.fromEnvironment(both).shard == Shard(index: 0, count: 2))
        do {
            _ = try Shard.fromEnvironment([:])
            Issue.record("empty environment accepted")
        } catch {
            #expect("\(error)".contains("JOB_COMPLETION_INDEX") && "\(error)".contains("SLURM_ARRAY_TASK_ID"))
        }
    }

    @Test func templatesNameTheShard() {
        #expect(Shard(index: 2, count: 8).render("out/manifest-{shard}-of-{shards}.jsonl") == "out/manifest-2-of-8.jsonl")
    }
}
