// The TypeScript client as a consumer gets it: `npm pack` of gen/ts (@authapi/client), installed
// from the tarball into a fresh project, compiled there with `tsc --strict`, and run against the
// real binary. Nothing is downloaded: npm runs --offline with an empty cache of its own, and the
// package's dependencies are packed from this repository's node_modules (the versions
// package-lock.json pins), since npm cannot resolve a registry dependency offline without its
// metadata in the cache.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";

import { repoRoot, rootPassword, rootUsername, startServer, type RunningServer } from "./authapi.js";

const packageDir = join(repoRoot, "gen", "ts");

// The consumer: plain use of the package, and misuse the types must reject (if they were `any`,
// an unused @ts-expect-error would fail the compilation).
const consumerSource = `import { createClient, type Schemas } from "@authapi/client";

export async function accountOf(baseUrl: string, username: string, password: string): Promise<Schemas["Account"]> {
  const client = createClient(baseUrl);
  const login = await client.POST("/api/v1/auth/token/", { body: { username, password } });
  if (!login.data) {
    throw new Error(\`login: \${login.error?.code}: \${login.error?.detail}\`);
  }
  const pair: Schemas["TokenPair"] = login.data;
  const me = await client.GET("/api/v1/account/", { headers: { Authorization: \`Bearer \${pair.access}\` } });
  if (!me.data) {
    throw new Error(\`account: \${me.error?.code}: \${me.error?.detail}\`);
  }
  return me.data;
}

export function misuse(): void {
  const client = createClient("http://127.0.0.1:8000");
  // @ts-expect-error the spec has no such path
  void client.GET("/api/v1/no-such-path/");
  // @ts-expect-error a login needs a password
  void client.POST("/api/v1/auth/token/", { body: { username: "alice" } });
}
`;

const consumerTSConfig = {
  compilerOptions: {
    target: "ES2022",
    lib: ["ES2022", "DOM"],
    module: "NodeNext",
    moduleResolution: "NodeNext",
    types: [],
    strict: true,
    outDir: "dist",
  },
  files: ["consumer.ts"],
};

/** cleanEnv is this process's environment without npm's settings: `npm run` exports its own
 * (npm_config_local_prefix among them), which would point the inner npm at this repository. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key)) {
      env[key] = value;
    }
  }
  return env;
}

function run(cwd: string, command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { cwd, env: cleanEnv(), encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(" ")} in ${cwd}: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

/** runtimeDependencies lists the package directories (under the repository's node_modules)
 * that the package named needs at run time, transitively. */
function runtimeDependencies(packageJSONPath: string, seen = new Set<string>()): string[] {
  const manifest = JSON.parse(readFileSync(packageJSONPath, "utf8")) as { dependencies?: Record<string, string> };
  for (const name of Object.keys(manifest.dependencies ?? {})) {
    const dir = join(repoRoot, "node_modules", name);
    if (!seen.has(dir)) {
      seen.add(dir);
      runtimeDependencies(join(dir, "package.json"), seen);
    }
  }
  return [...seen];
}

describe("the TypeScript client as an npm package", () => {
  let server: RunningServer;
  let project: string;

  before(async () => {
    project = mkdtempSync(join(tmpdir(), "authapi-consumer-"));
    server = await startServer();
  });

  after(async () => {
    await server?.stop();
    rmSync(project, { recursive: true, force: true });
  });

  it("installs from npm pack into a fresh project, compiles with tsc --strict and calls the server", async () => {
    const dirs = [packageDir, ...runtimeDependencies(join(packageDir, "package.json"))];
    const packed = JSON.parse(
      run(project, "npm", ["pack", "--json", "--offline", "--ignore-scripts", "--pack-destination", project, ...dirs]),
    ) as { name: string; filename: string; files: { path: string }[] }[];
    const client = packed.find((p) => p.name === "@authapi/client");
    assert.ok(client, `npm pack made no @authapi/client: ${JSON.stringify(packed.map((p) => p.name))}`);
    assert.deepEqual(
      client.files.map((f) => f.path).sort(),
      ["dist/client.d.ts", "dist/client.js", "dist/index.d.ts", "dist/index.js", "dist/schema.d.ts", "package.json"],
      "the tarball holds the built client and its manifest, nothing else",
    );

    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify(consumerTSConfig));
    writeFileSync(join(project, "consumer.ts"), consumerSource);
    run(project, "npm", [
      "install",
      "--offline",
      "--cache",
      join(project, ".npm-cache"),
      "--no-audit",
      "--no-fund",
      "--ignore-scripts",
      ...packed.map((p) => `./${p.filename}`),
    ]);
    const installed = join(project, "node_modules", "@authapi", "client");
    assert.ok(lstatSync(installed).isDirectory(), "the package is unpacked from the tarball, not linked to the repository");

    run(project, process.execPath, [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "--strict", "--project", project]);

    const consumer = (await import(pathToFileURL(join(project, "dist", "consumer.js")).href)) as {
      accountOf(baseUrl: string, username: string, password: string): Promise<{ id: number; username: string }>;
    };
    const account = await consumer.accountOf(server.baseUrl, rootUsername, rootPassword);
    assert.equal(account.username, rootUsername);
    assert.ok(Number.isInteger(account.id) && account.id > 0, `account id ${account.id}`);
  });
});

// The verifier's consumer: a resource server's use of @authapi/verifier, and misuse the types
// must reject.
const verifierConsumerSource = `import { createVerifier, requireAccessToken, TokenError, type AccessTokenClaims } from "@authapi/verifier";

export async function subjectOf(issuer: string, token: string): Promise<string> {
  const verifier = await createVerifier({ issuer, audience: issuer });
  try {
    const claims: AccessTokenClaims = await verifier.verify(token);
    void requireAccessToken(verifier);
    return claims.sub;
  } finally {
    await verifier.close();
  }
}

export function isRefusal(e: unknown): boolean {
  return e instanceof TokenError && (e.status === 401 || e.status === 503);
}

export function misuse(): void {
  // @ts-expect-error the audience is required
  void createVerifier({ issuer: "http://127.0.0.1:8000" });
}
`;

describe("the verifier as an npm package", () => {
  let server: RunningServer;
  let project: string;
  const verifierDir = join(repoRoot, "verifier", "node");

  before(async () => {
    project = mkdtempSync(join(tmpdir(), "authapi-verifier-consumer-"));
    server = await startServer();
  });

  after(async () => {
    await server?.stop();
    rmSync(project, { recursive: true, force: true });
  });

  it("installs from npm pack into a fresh project, compiles with tsc --strict and verifies the server's token", async () => {
    const dirs = [verifierDir, ...runtimeDependencies(join(verifierDir, "package.json"))];
    const packed = JSON.parse(
      run(project, "npm", ["pack", "--json", "--offline", "--ignore-scripts", "--pack-destination", project, ...dirs]),
    ) as { name: string; filename: string; files: { path: string }[] }[];
    const pkg = packed.find((p) => p.name === "@authapi/verifier");
    assert.ok(pkg, `npm pack made no @authapi/verifier: ${JSON.stringify(packed.map((p) => p.name))}`);
    assert.deepEqual(
      pkg.files.map((f) => f.path).sort(),
      ["dist/express.d.ts", "dist/express.js", "dist/index.d.ts", "dist/index.js", "dist/stepup.d.ts", "dist/stepup.js", "dist/verifier.d.ts", "dist/verifier.js", "package.json"],
      "the tarball holds the built verifier and its manifest, nothing else",
    );
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "verifier-consumer", private: true, type: "module" }));
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify(consumerTSConfig));
    writeFileSync(join(project, "consumer.ts"), verifierConsumerSource);
    run(project, "npm", ["install", "--offline", "--cache", join(project, ".npm-cache"), "--no-audit", "--no-fund", "--ignore-scripts",
      ...packed.map((p) => `./${p.filename}`)]);
    assert.ok(lstatSync(join(project, "node_modules", "@authapi", "verifier")).isDirectory(), "unpacked from the tarball, not linked");
    run(project, process.execPath, [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "--strict", "--project", project]);

    const consumer = (await import(pathToFileURL(join(project, "dist", "consumer.js")).href)) as {
      subjectOf(issuer: string, token: string): Promise<string>;
      isRefusal(e: unknown): boolean;
    };
    const login = await fetch(`${server.baseUrl}/api/v1/auth/token/`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: rootUsername, password: rootPassword }),
    });
    const pair = (await login.json()) as { access: string; refresh: string };
    assert.match(await consumer.subjectOf(server.baseUrl, pair.access), /^\d+$/);
    await assert.rejects(consumer.subjectOf(server.baseUrl, pair.refresh), (e) => consumer.isRefusal(e));
  });
});
