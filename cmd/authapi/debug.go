package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"
)

// listenLoopback opens the listener of an operator's side port: --debug-addr (profiles show
// memory contents and cost CPU to take) or --metrics-addr (metrics show traffic and login
// outcomes). Neither is for the public, so it refuses an address that is not on loopback
// unless allowRemote (the flag named allowFlag) is set.
func listenLoopback(flag, addr, allowFlag string, allowRemote bool) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	if !allowRemote && !isLoopbackHost(host) {
		return nil, fmt.Errorf("%s %q is not a loopback address (127.0.0.1, [::1] or localhost); set %s to serve on it", flag, addr, allowFlag)
	}
	return net.Listen("tcp", addr)
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// debugHandler serves net/http/pprof on its own mux, never on the API's.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// serveMetrics serves metrics at /metrics on ln until the returned stop is called; serve keeps
// it up through the drain, so a scrape sees the instance leave.
func serveMetrics(ln net.Listener, metrics http.Handler, log *slog.Logger) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", "err", err)
		}
	}()
	return func() {
		srv.Close()
		<-done
	}
}

// serveDebug serves profiles on ln until ctx ends. There is no write timeout: a CPU profile
// or trace streams for as long as its ?seconds= asks.
func serveDebug(ctx context.Context, ln net.Listener, log *slog.Logger) {
	srv := &http.Server{
		Handler:           debugHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Error("debug listener", "err", err)
	}
}
