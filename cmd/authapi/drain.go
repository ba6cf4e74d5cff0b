package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// waitDrain waits for d, or until a second SIGINT or SIGTERM says not to wait any longer.
func waitDrain(d time.Duration, log *slog.Logger) {
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case sig := <-again:
		log.Info("drain cut short by a second signal", "signal", sig.String())
	}
}
