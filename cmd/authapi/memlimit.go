package main

import (
	"log/slog"
	"runtime/debug"
)

// memoryBaseMiB is what serving needs beyond the memory it is configured to bound: the idle
// server's heap (about 30 MiB), request and response buffers, the verified refresh tokens
// (5 MiB), the Shared Signals queues, and room for the collector to work in.
const memoryBaseMiB = 128

// setMemoryLimit is debug.SetMemoryLimit; the command's tests run serve in their own
// process, which they keep free of it.
var setMemoryLimit = debug.SetMemoryLimit

// memoryLimit is the soft memory limit serve gives the Go runtime, in bytes, and what it
// comes from; 0 when serve sets none. By default it is the sum of the memory serve is
// configured to bound (the auth cache, and argon2id's memory for each hash that may run at
// once) and memoryBaseMiB: without it the collector lets the heap grow to twice what is
// live, so a full auth cache of 256 MiB took 500 MiB of RSS. GOMEMLIMIT, when set, is the
// runtime's own and serve leaves it.
func memoryLimit(cfg serveConfig, getenv func(string) string) (int64, string) {
	switch {
	case cfg.memoryLimitMiB > 0:
		return int64(cfg.memoryLimitMiB) << 20, "--memory-limit-mib"
	case cfg.memoryLimitMiB < 0 || getenv("GOMEMLIMIT") != "":
		return 0, ""
	}
	var cacheMiB int64
	if cfg.cacheEntries >= 0 {
		cacheMiB = int64(cfg.cacheMiB)
	}
	hashesKiB := int64(cfg.maxHashes) * int64(cfg.argonMemory)
	return (cacheMiB<<20 + hashesKiB<<10 + memoryBaseMiB<<20), "--auth-cache-mib, --max-concurrent-hashes x --argon2-memory, and a base"
}

// applyMemoryLimit sets serve's memory limit, if any, and logs it.
func applyMemoryLimit(cfg serveConfig, getenv func(string) string, log *slog.Logger) {
	limit, from := memoryLimit(cfg, getenv)
	if limit == 0 {
		return
	}
	setMemoryLimit(limit)
	log.Info("memory limit", "mib", limit>>20, "from", from)
}
