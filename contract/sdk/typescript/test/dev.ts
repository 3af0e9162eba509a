// A real `ztlog dev` for the tests: built from this repository with go (or
// taken from $ZTLOG_BIN), started on a free 127.0.0.1 port in a temporary
// data directory, stopped at the end.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { get } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file is contract/sdk/typescript/dist/test/dev.js). */
export const repoRoot = fileURLToPath(new URL("../../../../../", import.meta.url));

/** testdata of the repository. */
export const testdata = join(repoRoot, "testdata");

export const DEMO_BROKER = "spiffe://dev.ztlog.local/broker/demo";
export const DEMO_AGENT = "spiffe://dev.ztlog.local/agent/demo";

/** freePort asks the kernel for a port nobody listens on. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (a && typeof a === "object" ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

let built: string | undefined;

/**
 * ztlogBinary returns the path of a ztlog binary ($ZTLOG_BIN, or built
 * once per process with go), or a reason to skip naming the missing tool.
 */
export function ztlogBinary(): { bin?: string; skip?: string } {
  if (process.env.ZTLOG_BIN) {
    return existsSync(process.env.ZTLOG_BIN) ? { bin: process.env.ZTLOG_BIN } : { skip: `ZTLOG_BIN=${process.env.ZTLOG_BIN} does not exist` };
  }
  if (built) return { bin: built };
  const v = spawnSync("go", ["version"], { encoding: "utf8" });
  if (v.error || v.status !== 0) return { skip: "go is not installed (needed to build ztlog; or set ZTLOG_BIN)" };
  const out = join(mkdtempSync(join(tmpdir(), "ztlog-sdk-ts-bin-")), "ztlog");
  const b = spawnSync("go", ["build", "-o", out, "./cmd/ztlog"], { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "inherit", "inherit"] });
  if (b.status !== 0) throw new Error(`go build ./cmd/ztlog failed (exit ${b.status})`);
  built = out;
  return { bin: out };
}

/** A running ztlog dev. */
export interface Dev {
  url: string;
  port: number;
  /** The data directory; SVIDs, bundle and JWT are in dir/dev/. */
  dir: string;
  devDir: string;
  stop(): Promise<void>;
}

function readyz(port: number): Promise<number> {
  return new Promise((resolve) => {
    const r = get({ host: "127.0.0.1", port, path: "/readyz", timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    r.on("error", () => resolve(0));
    r.on("timeout", () => {
      r.destroy();
      resolve(0);
    });
  });
}

/** startDev starts `ztlog dev` and waits until it is ready (at most 60 s). */
export async function startDev(bin: string): Promise<Dev> {
  const dir = mkdtempSync(join(tmpdir(), "ztlog-sdk-ts-"));
  const port = await freePort();
  let log = "";
  const p: ChildProcess = spawn(bin, ["dev", "--data-dir", dir, "--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
  p.stdout!.on("data", (b: Buffer) => (log += b.toString()));
  p.stderr!.on("data", (b: Buffer) => (log += b.toString()));
  let exited = false;
  const exit = new Promise<void>((r) => p.once("exit", () => ((exited = true), r())));
  const deadline = Date.now() + 60_000;
  while ((await readyz(port)) !== 200) {
    if (exited || Date.now() > deadline) {
      p.kill("SIGKILL");
      throw new Error(`ztlog dev did not become ready on 127.0.0.1:${port}:\n${log.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    dir,
    devDir: join(dir, "dev"),
    async stop() {
      if (!exited) {
        p.kill("SIGTERM");
        const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
        await exit;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
