// Command authapi serves the authapi JWT authentication API and administers its database.
//
//	authapi serve            serve the API (migrates the schema first)
//	authapi migrate          apply database migrations
//	authapi createsuperuser  create a superuser, prompting for what is missing
//	authapi keys             list, rotate or encrypt the token signing keys
//	authapi clients          manage the API clients (create, list, rotate, disable, delete)
//	authapi flushexpiredtokens  delete expired and long-revoked sessions
//	authapi import-django    import the users of the demo's Django database
//	authapi version          print the version and the commit it was built from
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: authapi <command> [flags]

commands:
  serve            serve the API (migrates the schema first)
  migrate          apply database migrations
  createsuperuser  create a superuser
  keys             list, rotate, encrypt or reencrypt the token signing keys
  clients          create, list, show, rotate, disable, enable or delete API clients
  flushexpiredtokens  delete expired and long-revoked sessions
  import-django    import the users of the demo's Django database
  version          print the version and the commit it was built from (also --version)

Run "authapi <command> -h" for a command's flags.
`

// run is main without the process: tests call it with their own environment and streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		err = migrate(ctx, args[1:], getenv, stdout, stderr)
	case "createsuperuser":
		err = createSuperuser(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "keys":
		err = keysCommand(ctx, args[1:], getenv, stdout, stderr)
	case "clients":
		err = clientsCommand(ctx, args[1:], getenv, stdout, stderr)
	case "flushexpiredtokens":
		err = flushExpiredTokens(ctx, args[1:], getenv, stdout, stderr)
	case "import-django":
		err = importDjango(ctx, args[1:], getenv, stdout, stderr)
	case "version", "-version", "--version":
		info, ok := debug.ReadBuildInfo()
		printVersion(stdout, info, ok)
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "authapi: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == errUsage {
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "authapi %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
