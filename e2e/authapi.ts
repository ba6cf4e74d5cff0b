// Shared by the end-to-end tests: starts the real authapi binary on a free loopback port with a
// fresh SQLite file, waits for /readyz, and stops it again (always: the tests call stop in an
// `after` hook, and a process exit kills a server that is still running).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

import type { AuthAPIClient } from "../gen/ts/client.js";

export const rootUsername = "root";
export const rootPassword = "super_secret_password";

/** repoRoot is the directory holding openapi.yaml, found upward from this file or its build. */
export const repoRoot = findRepoRoot(dirname(fileURLToPath(import.meta.url)));

function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "openapi.yaml")) && existsSync(join(dir, "package.json"))) {
      return dir;
    }
    if (dirname(dir) === dir) {
      throw new Error(`no openapi.yaml in ${start} or above`);
    }
  }
}

/** binaryPath is $AUTHAPI_BIN (relative to the working directory) or bin/authapi of the repo. */
export function binaryPath(): string {
  const fromEnv = process.env.AUTHAPI_BIN;
  const bin = fromEnv ? resolve(fromEnv) : join(repoRoot, "bin", "authapi");
  if (!existsSync(bin)) {
    throw new Error(`authapi binary not found at ${bin}: run 'make build' or set AUTHAPI_BIN`);
  }
  return bin;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningServer {
  /** baseUrl is the server's origin, http://127.0.0.1:PORT, without a trailing slash. */
  baseUrl: string;
  /** output is what the server has printed so far (its JSON log), for failure messages. */
  output(): string;
  /** stop sends SIGTERM (SIGKILL after 10 s), waits for the exit and removes the temp dir. */
  stop(): Promise<Exit>;
}

const startAttempts = 3;
const healthTimeoutMs = 20_000;
const stopTimeoutMs = 10_000;
const maxOutput = 256 * 1024;
const exitSignals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * startServer runs `authapi serve` and resolves once /readyz answers 200 (/healthz answers as
 * soon as it listens, before its migrations and keys are ready). settings are AUTHAPI_*
 * variables for this server, on top of the tests' own.
 */
export async function startServer(settings: Record<string, string> = {}): Promise<RunningServer> {
  const bin = binaryPath();
  for (let attempt = 1; ; attempt++) {
    const server = await startOnce(bin, await freePort(), settings);
    const failure = await waitHealthy(server);
    if (failure === undefined) {
      return server;
    }
    await server.stop();
    // The port was free when chosen but another process may take it before the server
    // binds: choose again. Any other failure is the server's own.
    if (attempt === startAttempts || !/address already in use/i.test(server.output())) {
      throw new Error(`${failure}\n--- authapi output ---\n${server.output()}`);
    }
  }
}

/** freePort returns a TCP port on 127.0.0.1 that was free when asked. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolvePort(port) : reject(new Error("no free port"))));
    });
  });
}

interface StartedServer extends RunningServer {
  exited(): Exit | undefined;
}

function startOnce(bin: string, port: number, settings: Record<string, string>): StartedServer {
  const dir = mkdtempSync(join(tmpdir(), "authapi-e2e-"));
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("AUTHAPI_")) {
      env[key] = value; // the caller's AUTHAPI_* settings must not change the server under test
    }
  }
  Object.assign(env, {
    AUTHAPI_BOOTSTRAP_USERNAME: rootUsername,
    AUTHAPI_BOOTSTRAP_PASSWORD: rootPassword,
    AUTHAPI_ARGON2_MEMORY_KIB: "64",
    AUTHAPI_ARGON2_ITERATIONS: "1",
    AUTHAPI_SHUTDOWN_DRAIN: "0s", // no load balancer to tell: stop at once
    // "{port}" in a setting is the port chosen (a public URL, WebAuthn origins).
    ...Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, v.replaceAll("{port}", String(port))])),
  });
  const child = spawn(bin, ["serve", "--addr", `127.0.0.1:${port}`, "--db", join(dir, "a.db")], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const collect = (chunk: Buffer) => {
    if (output.length < maxOutput) {
      output += chunk.toString("utf8");
    }
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);

  let exit: Exit | undefined;
  const exitedPromise = new Promise<Exit>((resolveExit) => {
    child.once("error", (err) => {
      output += `spawn ${bin}: ${err.message}\n`;
      exit ??= { code: null, signal: null };
      resolveExit(exit);
    });
    child.once("exit", (code, signal) => {
      exit = { code, signal };
      resolveExit(exit);
    });
  });
  // A test process that exits without its after hooks, or is interrupted, takes the server with
  // it. A signal's default action would end this process without an "exit" event, so the
  // handler kills the server and then ends this process by the same signal.
  const killOnExit = () => {
    if (exit === undefined) {
      child.kill("SIGKILL");
    }
  };
  const killOnSignal = (signal: NodeJS.Signals) => {
    killOnExit();
    removeListeners();
    rmSync(dir, { recursive: true, force: true });
    process.kill(process.pid, signal);
  };
  const removeListeners = () => {
    process.removeListener("exit", killOnExit);
    for (const signal of exitSignals) {
      process.removeListener(signal, killOnSignal);
    }
  };
  process.once("exit", killOnExit);
  for (const signal of exitSignals) {
    process.once(signal, killOnSignal);
  }

  let stopping: Promise<Exit> | undefined;
  const stop = (): Promise<Exit> => {
    stopping ??= (async () => {
      if (exit === undefined) {
        child.kill("SIGTERM");
        const done = await Promise.race([exitedPromise, sleep(stopTimeoutMs, undefined, { ref: false })]);
        if (done === undefined) {
          output += `authapi did not stop within ${stopTimeoutMs} ms of SIGTERM: killing it\n`;
          child.kill("SIGKILL");
        }
      }
      const result = await exitedPromise;
      removeListeners();
      rmSync(dir, { recursive: true, force: true });
      return result;
    })();
    return stopping;
  };

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    output: () => output,
    stop,
    exited: () => exit,
  };
}

/** waitHealthy resolves to undefined once /readyz says ok, or to why it never did. */
async function waitHealthy(server: StartedServer): Promise<string | undefined> {
  const deadline = Date.now() + healthTimeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    const exit = server.exited();
    if (exit !== undefined) {
      return `authapi exited (code ${exit.code}, signal ${exit.signal}) before /readyz answered`;
    }
    try {
      const res = await fetch(`${server.baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
      const body: unknown = await res.json();
      if (res.status === 200 && (body as { status?: unknown }).status === "ok") {
        return undefined;
      }
      last = `status ${res.status}: ${JSON.stringify(body)}`;
    } catch (err) {
      last = String(err);
    }
    await sleep(50);
  }
  return `authapi was not ready (/readyz) within ${healthTimeoutMs} ms (last: ${last})`;
}

/** bearer returns the Authorization header for an access token. */
export function bearer(access: string): { Authorization: string } {
  return { Authorization: `Bearer ${access}` };
}

/** NewUser is an account for createUser: a password, and what differs from the defaults. */
export interface NewUser {
  password: string;
  is_staff?: boolean;
  first_name?: string;
  last_name?: string;
  email?: string;
}

/**
 * createUser creates an account through api as the holder of access (a superuser) and returns
 * its id. By default the account is not staff, named after the username, at example.com.
 */
export async function createUser(api: AuthAPIClient, access: string, username: string, user: NewUser): Promise<number> {
  const { data, error } = await api.POST("/api/v1/account/management/create/", {
    headers: bearer(access),
    body: {
      username,
      first_name: user.first_name ?? username[0]!.toUpperCase() + username.slice(1),
      last_name: user.last_name ?? "Example",
      email: user.email ?? `${username}@example.com`,
      password: user.password,
      is_staff: user.is_staff ?? false,
    },
  });
  assert.ok(data, `create ${username}: ${JSON.stringify(error)}`);
  return data.id;
}

/**
 * assertErrorBody checks an error answer against the spec's Error schema: detail and code,
 * and fields (messages per field) only when wantFields names them.
 */
export function assertErrorBody(body: unknown, wantCode: string, wantFields?: string[]): void {
  assert.ok(body !== null && typeof body === "object", `error body is not an object: ${JSON.stringify(body)}`);
  const { detail, code, fields, ...rest } = body as Record<string, unknown>;
  assert.deepEqual(Object.keys(rest), [], `error body has members outside the Error schema: ${JSON.stringify(body)}`);
  assert.equal(typeof detail, "string", `detail of ${JSON.stringify(body)}`);
  assert.notEqual(detail, "", `detail of ${JSON.stringify(body)}`);
  assert.equal(code, wantCode, `code of ${JSON.stringify(body)}`);
  if (wantFields === undefined) {
    assert.equal(fields, undefined, `unexpected fields in ${JSON.stringify(body)}`);
    return;
  }
  assert.ok(fields !== null && typeof fields === "object", `fields of ${JSON.stringify(body)}`);
  const byField = fields as Record<string, unknown>;
  assert.deepEqual(Object.keys(byField).sort(), [...wantFields].sort(), `fields of ${JSON.stringify(body)}`);
  for (const [name, messages] of Object.entries(byField)) {
    assert.ok(
      Array.isArray(messages) && messages.length > 0 && messages.every((m) => typeof m === "string" && m !== ""),
      `fields.${name} is not a list of messages: ${JSON.stringify(messages)}`,
    );
  }
}

/** specOperations lists "METHOD /path operationId" for every operation of an OpenAPI document. */
export function specOperations(spec: unknown): { method: string; path: string; operationId: string }[] {
  const paths = (spec as { paths?: Record<string, Record<string, unknown>> }).paths ?? {};
  const methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
  const out: { method: string; path: string; operationId: string }[] = [];
  for (const [path, item] of Object.entries(paths)) {
    for (const method of methods) {
      const op = item[method] as { operationId?: string } | undefined;
      if (op !== undefined) {
        out.push({ method: method.toUpperCase(), path, operationId: op.operationId ?? "" });
      }
    }
  }
  return out;
}
