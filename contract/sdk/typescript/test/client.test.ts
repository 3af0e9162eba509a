// The SDK against a real `ztlog dev` process (mutual TLS and JWT-SVID on
// 127.0.0.1), and against small real TLS servers holding the dev server's
// SVID for the failure modes a healthy service does not produce.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";

import { actionDigest, Ambiguous, argsDigest, CircuitOpen, Client, Denied, NoDecision, type ClientOptions } from "../src/index.js";
import { DEMO_AGENT, DEMO_BROKER, freePort, startDev, testdata, ztlogBinary, type Dev } from "./dev.js";

const { bin, skip } = ztlogBinary();

/** A TCP server on 127.0.0.1 that counts connections and hands each to handle. */
async function tcpServer(handle: (s: Socket, n: number) => void): Promise<{ port: number; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const sockets = new Set<Socket>();
  const srv: Server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    handle(s, ++n);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const a = srv.address();
  const port = a && typeof a === "object" ? a.port : 0;
  return {
    port,
    count: () => n,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

interface Seen {
  cid: string | undefined;
}

/** An HTTPS server with the dev service's own SVID, answering POST /v1/actions with answer(). */
async function fakeService(dev: Dev, answer: (n: number, res: import("node:http").ServerResponse, req: import("node:http").IncomingMessage) => void) {
  const seen: Seen[] = [];
  const srv: HttpsServer = createHttpsServer(
    { cert: readFileSync(join(dev.devDir, "server.pem")), key: readFileSync(join(dev.devDir, "server.key")) },
    (req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        seen.push({ cid: req.headers["x-correlation-id"] as string | undefined });
        answer(seen.length, res, req);
      });
    },
  );
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const a = srv.address();
  const port = a && typeof a === "object" ? a.port : 0;
  return {
    url: `https://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

describe("against a real ztlog dev", { skip }, () => {
  let dev: Dev;
  let client: Client;
  const opts = (o: Partial<ClientOptions> = {}): ClientOptions => ({
    server: dev.url,
    svid: join(dev.devDir, "agent"),
    ca: join(dev.devDir, "bundle.pem"),
    broker: DEMO_BROKER,
    ...o,
  });
  const clients: Client[] = [];
  const newClient = (o: Partial<ClientOptions> = {}) => {
    const c = new Client(opts(o));
    clients.push(c);
    return c;
  };

  before(async () => {
    dev = await startDev(bin!);
    client = newClient();
  });
  after(async () => {
    for (const c of clients) c.close();
    await dev?.stop();
  });

  test("the agent's SPIFFE ID comes from its X.509-SVID", () => {
    assert.equal(client.id, DEMO_AGENT);
  });

  test("allow: demo.echo is allowed with a verified receipt", async () => {
    const d = await client.decide({ action: "demo.echo", resource: "demo://hello" });
    assert.equal(d.allowed, true);
    assert.equal(typeof d.receipt, "string");
    assert.equal(d.claims?.log_index, d.index);
    assert.equal(d.claims?.leaf_hash, d.leafHash);
    assert.equal(d.claims?.sub, DEMO_AGENT);
    assert.equal(d.claims?.aud, DEMO_BROKER);
    assert.equal(d.claims?.iss, "localhost/ztlog-dev");
    assert.equal(d.claims?.policy_hash, d.policyHash);
    assert.equal(d.actionDigest, actionDigest({ actor: DEMO_AGENT, action: "demo.echo", resource: "demo://hello", broker: DEMO_BROKER }));
  });

  test("deny: aws.ec2.terminate_instances is a committed deny with its reason", async () => {
    const d = await client.decide({ action: "aws.ec2.terminate_instances", resource: "i-demo" });
    assert.equal(d.allowed, false);
    assert.equal(d.reasons[0]?.code, "action.forbidden");
    assert.equal(d.receipt, undefined);
    assert.ok(d.index > 0, `index ${d.index}`);
  });

  test("guardedCall runs fn once on an allow and returns its result", async () => {
    let runs = 0;
    const out = await client.guardedCall({ action: "demo.echo", resource: "demo://hello" }, (d) => {
      runs++;
      return `ran at ${d.index}`;
    });
    assert.equal(runs, 1);
    assert.match(out, /^ran at \d+$/);
  });

  test("guardedCall throws Denied on a deny and never runs fn", async () => {
    let runs = 0;
    await assert.rejects(
      client.guardedCall({ action: "aws.ec2.terminate_instances", resource: "i-demo" }, () => runs++),
      (e: unknown) => e instanceof Denied && e.reasons[0]?.code === "action.forbidden" && e.index > 0,
    );
    assert.equal(runs, 0);
  });

  test("args are sent and their digest is bound into the receipt's action digest", async () => {
    const args = { text: "hello", n: 3 };
    const d = await client.decide({ action: "demo.echo", resource: "demo://hello", args });
    const want = actionDigest({ actor: DEMO_AGENT, action: "demo.echo", resource: "demo://hello", argsDigest: argsDigest(args), broker: DEMO_BROKER });
    assert.equal(d.claims?.action_digest, want);
  });

  test("the correlation id given is the one committed", async () => {
    const d = await client.decide({ action: "demo.echo", resource: "demo://hello", correlationId: "sdk-ts-test-cid-1" });
    assert.equal(d.claims?.cid, "sdk-ts-test-cid-1");
  });

  test("no broker named: the request names the service's default broker, and the allow verifies for it", async () => {
    const c = newClient({ broker: undefined });
    assert.equal(await c.defaultBroker(), DEMO_BROKER);
    const d = await c.decide({ action: "demo.echo", resource: "demo://hello" });
    assert.equal(d.allowed, true);
    assert.equal(d.claims?.aud, DEMO_BROKER);
    assert.equal(d.actionDigest, actionDigest({ actor: DEMO_AGENT, action: "demo.echo", resource: "demo://hello", broker: DEMO_BROKER }));
  });

  test("no broker named: the deny verifies against the digest for the default broker", async () => {
    const c = newClient({ broker: undefined });
    const d = await c.decide({ action: "aws.ec2.terminate_instances", resource: "i-demo" });
    assert.equal(d.allowed, false);
    assert.equal(d.actionDigest, actionDigest({ actor: DEMO_AGENT, action: "aws.ec2.terminate_instances", resource: "i-demo", broker: DEMO_BROKER }));
    assert.equal(d.reasons[0]?.code, "action.forbidden");
    let runs = 0;
    await assert.rejects(
      c.guardedCall({ action: "aws.ec2.terminate_instances", resource: "i-demo" }, () => runs++),
      (e: unknown) => e instanceof Denied && e.reasons[0]?.code === "action.forbidden",
    );
    assert.equal(runs, 0);
  });

  test("no broker named, JWT-SVID: allow and deny verify", async () => {
    const c = newClient({ broker: undefined, svid: undefined, jwt: join(dev.devDir, "agent.jwt") });
    const allow = await c.decide({ action: "demo.echo", resource: "demo://hello" });
    assert.equal(allow.allowed, true);
    assert.equal(allow.claims?.aud, DEMO_BROKER);
    const deny = await c.decide({ action: "aws.ec2.terminate_instances", resource: "i-demo" });
    assert.equal(deny.allowed, false);
    assert.equal(deny.actionDigest, actionDigest({ actor: DEMO_AGENT, action: "aws.ec2.terminate_instances", resource: "i-demo", broker: DEMO_BROKER }));
  });

  test("JWT-SVID bearer (and a SPIFFE bundle JSON): allow", async () => {
    const c = newClient({ svid: undefined, jwt: readFileSync(join(dev.devDir, "agent.jwt"), "utf8"), ca: join(dev.devDir, "bundle.json") });
    let runs = 0;
    await c.guardedCall({ action: "demo.echo", resource: "demo://hello" }, () => runs++);
    assert.equal(runs, 1);
  });

  test("JWT-SVID bearer from a file: deny", async () => {
    const c = newClient({ svid: undefined, jwt: join(dev.devDir, "agent.jwt") }); // a file holding the token
    let runs = 0;
    await assert.rejects(c.guardedCall({ action: "aws.ec2.terminate_instances", resource: "i-demo" }, () => runs++), Denied);
    assert.equal(runs, 0);
  });

  test("a server that is not the expected SPIFFE ID: no decision, fn never runs", async () => {
    const c = newClient({ serverId: "spiffe://dev.ztlog.local/not-ztlog", retry: { attempts: 1 } });
    let runs = 0;
    await assert.rejects(c.guardedCall({ action: "demo.echo", resource: "demo://hello" }, () => runs++), (e: unknown) => e instanceof NoDecision && /not-ztlog/.test(e.message));
    assert.equal(runs, 0);
  });

  test("a server whose SVID does not chain to the trust bundle: no decision, fn never runs", async () => {
    const c = newClient({ ca: join(testdata, "attestations", "bundle.pem"), retry: { attempts: 1 } });
    let runs = 0;
    await assert.rejects(c.guardedCall({ action: "demo.echo", resource: "demo://hello" }, () => runs++), (e: unknown) => e instanceof NoDecision && /verify the first certificate/.test(e.message));
    assert.equal(runs, 0);
  });

  test("a receipt from another issuer than the trusted one: no decision, fn never runs", async () => {
    const c = newClient({ issuer: "example.org/another-log" });
    let runs = 0;
    await assert.rejects(c.guardedCall({ action: "demo.echo", resource: "demo://hello" }, () => runs++), (e: unknown) => e instanceof NoDecision && /issued by/.test(e.message));
    assert.equal(runs, 0);
  });

  test("a connection dropped before the handshake is retried under the same correlation id", async () => {
    const proxy = await tcpServer((s, n) => {
      if (n === 1) return s.destroy(); // nothing can have been sent
      const up = connect(dev.port, "127.0.0.1");
      up.on("error", () => s.destroy());
      s.pipe(up).pipe(s);
    });
    try {
      const c = newClient({ server: `https://127.0.0.1:${proxy.port}`, retry: { baseMs: 10 } });
      const d = await c.decide({ action: "demo.echo", resource: "demo://hello", correlationId: "sdk-ts-retry-1" });
      assert.equal(d.allowed, true);
      assert.equal(d.claims?.cid, "sdk-ts-retry-1");
      assert.ok(proxy.count() >= 2, `${proxy.count()} connections`);
    } finally {
      await proxy.close();
    }
  });

  test("503 log_pushback is retried with the same correlation id, then no decision", async () => {
    const fake = await fakeService(dev, (_n, res) => {
      res.writeHead(503, { "Content-Type": "application/json" }).end('{"code":"log_pushback","message":"busy"}');
    });
    try {
      const c = newClient({ server: fake.url, retry: { attempts: 3, baseMs: 5 }, breaker: { failures: -1 } });
      let runs = 0;
      await assert.rejects(c.guardedCall({ action: "demo.echo", resource: "demo://hello", correlationId: "cid-pushback" }, () => runs++), (e: unknown) => e instanceof NoDecision && !(e instanceof Ambiguous));
      assert.equal(runs, 0);
      assert.deepEqual(
        fake.seen.map((s) => s.cid),
        ["cid-pushback", "cid-pushback", "cid-pushback"],
      );
    } finally {
      await fake.close();
    }
  });

  test("503 commit_timeout is ambiguous and not asked again", async () => {
    const fake = await fakeService(dev, (_n, res) => {
      res.writeHead(503, { "Content-Type": "application/json" }).end('{"code":"commit_timeout","message":"slow"}');
    });
    try {
      const c = newClient({ server: fake.url, retry: { attempts: 3, baseMs: 5 } });
      let runs = 0;
      await assert.rejects(c.guardedCall({ action: "demo.echo", resource: "demo://hello" }, () => runs++), Ambiguous);
      assert.equal(runs, 0);
      assert.equal(fake.seen.length, 1);
    } finally {
      await fake.close();
    }
  });

  test("503 commit_timeout with retry.ambiguous is asked again under the same correlation id", async () => {
    const fake = await fakeService(dev, (_n, res) => {
      res.writeHead(503, { "Content-Type": "application/json" }).end('{"code":"commit_timeout","message":"slow"}');
    });
    try {
      const c = newClient({ server: fake.url, retry: { attempts: 3, baseMs: 5, ambiguous: true } });
      await assert.rejects(c.decide({ action: "demo.echo", resource: "demo://hello", correlationId: "cid-ambig" }), Ambiguous);
      assert.deepEqual(
        fake.seen.map((s) => s.cid),
        ["cid-ambig", "cid-ambig", "cid-ambig"],
      );
    } finally {
      await fake.close();
    }
  });

  test("an answer lost after the request was sent is ambiguous; fn never runs", async () => {
    const fake = await fakeService(dev, (_n, res) => res.socket?.destroy());
    try {
      const c = newClient({ server: fake.url, retry: { attempts: 3, baseMs: 5 } });
      let runs = 0;
      await assert.rejects(c.guardedCall({ action: "demo.echo", resource: "demo://hello" }, () => runs++), Ambiguous);
      assert.equal(runs, 0);
      assert.equal(fake.seen.length, 1);
    } finally {
      await fake.close();
    }
  });

  test("no answer within the timeout is ambiguous; fn never runs", async () => {
    const fake = await fakeService(dev, () => {
      /* never answers */
    });
    try {
      const c = newClient({ server: fake.url, timeout: 300, retry: { attempts: 1 } });
      let runs = 0;
      await assert.rejects(c.guardedCall({ action: "demo.echo", resource: "demo://hello" }, () => runs++), (e: unknown) => e instanceof Ambiguous && /300 ms/.test(e.message));
      assert.equal(runs, 0);
    } finally {
      await fake.close();
    }
  });

  test("an allow with no receipt is no decision; fn never runs", async () => {
    const fake = await fakeService(dev, (_n, res, req) => {
      const cid = req.headers["x-correlation-id"];
      const digest = actionDigest({ actor: DEMO_AGENT, action: "demo.echo", resource: "demo://hello", broker: DEMO_BROKER });
      res.writeHead(200, { "Content-Type": "application/json" }).end(
        JSON.stringify({ decision: "allow", reasons: [], action_digest: digest, correlation_id: cid, policy: { hash: "sha256:" + "01".repeat(32) }, log: { index: 7, leaf_hash: Buffer.alloc(32).toString("base64") } }),
      );
    });
    try {
      const c = newClient({ server: fake.url, issuer: "localhost/ztlog-dev" });
      let runs = 0;
      await assert.rejects(c.guardedCall({ action: "demo.echo", resource: "demo://hello" }, () => runs++), (e: unknown) => e instanceof NoDecision && /without a receipt/.test(e.message));
      assert.equal(runs, 0);
    } finally {
      await fake.close();
    }
  });

  for (const [name, status, body] of [
    ["unreadable", 500, JSON.stringify({ code: "internal_error", message: "x" })],
    ["a default broker that is not a SPIFFE ID", 200, JSON.stringify({ origin: "localhost/ztlog-dev", default_broker: "broker-1" })],
  ] as const) {
    test(`no broker named, /.well-known/ztlog ${name}: no decision, nothing asked, fn never runs`, async () => {
      const posts: string[] = [];
      const fake = await fakeService(dev, (_n, res, req) => {
        if (req.method === "GET" && req.url === "/.well-known/ztlog") {
          res.writeHead(status, { "Content-Type": "application/json" }).end(body);
          return;
        }
        posts.push(`${req.method} ${req.url}`);
        res.writeHead(500).end();
      });
      try {
        const c = newClient({ server: fake.url, broker: undefined, retry: { attempts: 1 } });
        let runs = 0;
        await assert.rejects(c.guardedCall({ action: "demo.echo", resource: "demo://hello" }, () => runs++), (e: unknown) => e instanceof NoDecision && /well-known/.test(e.message));
        assert.equal(runs, 0);
        assert.deepEqual(posts, []);
      } finally {
        await fake.close();
      }
    });
  }

  test("the circuit breaker opens after repeated failures and then asks nothing", async () => {
    const down = await tcpServer((s) => s.destroy());
    let now = 1_000_000;
    try {
      const c = newClient({ server: `https://127.0.0.1:${down.port}`, retry: { attempts: 1 }, breaker: { failures: 2, cooldownMs: 60_000 }, now: () => now });
      await assert.rejects(c.decide({ action: "demo.echo", resource: "demo://hello" }), NoDecision);
      await assert.rejects(c.decide({ action: "demo.echo", resource: "demo://hello" }), NoDecision);
      const before = down.count();
      let runs = 0;
      await assert.rejects(c.guardedCall({ action: "demo.echo", resource: "demo://hello" }, () => runs++), CircuitOpen);
      assert.equal(runs, 0);
      assert.equal(down.count(), before);
      now += 60_001; // half-open: one trial call goes out
      await assert.rejects(c.decide({ action: "demo.echo", resource: "demo://hello" }), (e: unknown) => e instanceof NoDecision && !(e instanceof CircuitOpen));
      assert.equal(down.count(), before + 1);
      await assert.rejects(c.decide({ action: "demo.echo", resource: "demo://hello" }), CircuitOpen);
    } finally {
      await down.close();
    }
  });

  test("the breaker closes again on a decision", async () => {
    let skew = 0; // receipts are checked against this clock too: move it by a second only
    const c = newClient({ retry: { attempts: 1 }, breaker: { failures: 1, cooldownMs: 1000 }, now: () => Date.now() + skew });
    await assert.rejects(c.decide({ action: "demo.echo", resource: "" }), NoDecision); // refused before asking: counts as a failure
    await assert.rejects(c.decide({ action: "demo.echo", resource: "demo://hello" }), CircuitOpen);
    skew += 1001;
    const d = await c.decide({ action: "demo.echo", resource: "demo://hello" });
    assert.equal(d.allowed, true);
    const d2 = await c.decide({ action: "demo.echo", resource: "demo://hello" });
    assert.equal(d2.allowed, true);
  });

  test("nothing listening: no decision (connection refused, retried, not ambiguous); fn never runs", async () => {
    const port = await freePort();
    const c = newClient({ server: `https://127.0.0.1:${port}`, retry: { attempts: 2, baseMs: 5 } });
    let runs = 0;
    await assert.rejects(c.guardedCall({ action: "demo.echo", resource: "demo://hello" }, () => runs++), (e: unknown) => e instanceof NoDecision && !(e instanceof Ambiguous) && /ECONNREFUSED/.test(e.message));
    assert.equal(runs, 0);
  });

  test("service down: the stopped service means no decision, and fn never runs", async () => {
    await dev.stop();
    let runs = 0;
    await assert.rejects(client.guardedCall({ action: "demo.echo", resource: "demo://hello" }, () => runs++), NoDecision);
    assert.equal(runs, 0);
  });
});

describe("client settings", () => {
  test("plain http is refused", () => {
    assert.throws(() => new Client({ server: "http://127.0.0.1:1", ca: "x", jwt: "a.b.c" }), /must be reached over https/);
  });
  test("svid and jwt together are refused", () => {
    assert.throws(() => new Client({ server: "https://127.0.0.1:1", ca: "x", jwt: "a.b.c", svid: "p" }), /exactly one of svid/);
  });
  test("a missing trust bundle names the file", () => {
    assert.throws(() => new Client({ server: "https://127.0.0.1:1", ca: "/nonexistent/bundle.pem", jwt: "a.b.c" }), /\/nonexistent\/bundle\.pem/);
  });
});
