// The ztlog client: an agent asks ztlog whether it may act, and acts only on
// a verified allow. The TypeScript twin of the Go SDK, contract/client.
//
// Fail closed. decide returns a Decision only for an answer it verified: an
// allow is HTTP 200 whose receipt verifies against the issuer's JWKS
// (signature, issuer, audience, not expired), names the action digest the
// SDK computed itself from what it asked, and the log index, leaf hash and
// agent the answer gives; a deny is HTTP 403 with a committed index.
// Anything else (transport error, timeout, 4xx/5xx, an unparsable, unsigned
// or inconsistent answer) is thrown, and guardedCall never runs fn.
//
// Retries. Every attempt of one call carries the same correlation id
// (X-Correlation-ID). A call is retried, with exponential backoff and
// jitter, only when nothing can have been committed: the connection failed
// before the TLS handshake completed (so no request was written), or the
// service answered 503 log_pushback or shutting_down. When the outcome is
// ambiguous (the request was sent and the answer lost, or 503
// commit_timeout, commit_failed, log_storage_error, internal_error) the
// decision may be in the log: the SDK throws Ambiguous and does not ask
// again, unless retry.ambiguous is set.
//
// No broker named. The service decides a request that names no broker for
// its default broker, which is part of the action digest. The SDK reads
// that broker (default_broker of /.well-known/ztlog, once, over the
// authenticated connection) and names it in the request, so the digest it
// checks allows and denies against is the one the service commits, as the
// Go SDK does. When the service has no default broker the request names
// none, and the service refuses it.
//
// Circuit breaker. After breaker.failures consecutive calls without a
// decision the breaker opens for breaker.cooldownMs: calls throw
// CircuitOpen at once (no allow). Then one call is let through; a decision
// closes the breaker, another failure opens it again.

import { readFileSync, statSync } from "node:fs";
import { Agent, request } from "node:https";
import { X509Certificate, randomInt, randomUUID } from "node:crypto";
import type { PeerCertificate, TLSSocket } from "node:tls";
import type { Socket } from "node:net";

import { checkAnswer, LEEWAY_MS, NotADecision, parseAnswer, type Decision } from "./answer.js";
import { actionDigest, CanonicalError, jsonArgs, sha256, canonicalize, type ActionFields } from "./digest.js";
import { Ambiguous, CircuitOpen, Denied, Inconsistent, NoDecision, ReceiptError } from "./errors.js";
import { isSpiffeId, parseJwks, trustDomainOf, type JWKS } from "./receipt.js";

/** Retry settings. */
export interface RetryOptions {
  /** Most attempts per call (default 3; 1 = no retry). */
  attempts?: number;
  /** Backoff bounds, milliseconds (defaults 100 and 2000). */
  baseMs?: number;
  maxMs?: number;
  /** Also retry calls whose outcome is unknown, under the same correlation id. */
  ambiguous?: boolean;
}

/** Circuit breaker settings. */
export interface BreakerOptions {
  /** Consecutive calls without a decision that open it (default 5; negative disables it). */
  failures?: number;
  /** How long it stays open, milliseconds (default 30000). */
  cooldownMs?: number;
}

/** Client settings. server, ca, and svid or jwt are required. */
export interface ClientOptions {
  /** The ztlog service, https://host:port. */
  server: string;
  /**
   * The agent's X.509-SVID: PREFIX.pem (certificate chain, leaf first) and
   * PREFIX.key (PKCS#8 private key), for mutual TLS.
   */
  svid?: string;
  /** The trust bundle: a PEM file of CA certificates, or a SPIFFE bundle JSON file. */
  ca: string;
  /** A JWT-SVID (the token, or a file holding it), sent as a bearer token instead of a client certificate. */
  jwt?: string;
  /** Bound on one attempt, milliseconds (default 10000). */
  timeout?: number;
  /** The service's SPIFFE ID (default: any member of the agent's trust domain). */
  serverId?: string;
  /** The log origin receipts must carry (default: read from /.well-known/ztlog over the authenticated connection). */
  issuer?: string;
  /** The broker of requests that name none (default: the service's default_broker from /.well-known/ztlog). */
  broker?: string;
  retry?: RetryOptions;
  breaker?: BreakerOptions;
  /** The clock, milliseconds since the epoch (default Date.now). */
  now?: () => number;
}

/** One action to decide. */
export interface DecideRequest {
  /** The action's name, e.g. "demo.echo" or mcpToolAction("search"). */
  action: string;
  /** What it acts on. */
  resource: string;
  /**
   * Argument values, a JSON object, sent for guardrail inspection (never
   * stored); their JCS digest becomes args_digest and is bound into the
   * action digest.
   */
  args?: Record<string, unknown>;
  /** Or send only the digest of the arguments. */
  argsDigest?: string;
  /** The broker the receipt is for (default ClientOptions.broker). */
  broker?: string;
  /** The correlation id of this call (default: a fresh UUID); every attempt carries it. */
  correlationId?: string;
  /** A delegated user's JWT (X-ZT-User-Token). */
  userToken?: string;
}

/** What the SDK reads from /.well-known/ztlog. */
interface ServiceInfo {
  origin: string;
  defaultBroker: string;
}

interface Attempt {
  status: number;
  body: string;
}

/** One failed attempt: whether nothing can have been committed, or it may have been. */
class Failure extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
    readonly ambiguous: boolean,
  ) {
    super(message);
  }
}

const CORRELATION_ID = /^[!-~]{1,128}$/;
const MAX_ANSWER = 1 << 20;
const JWKS_MIN_REFRESH_MS = 10_000;

function readFile(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new TypeError(`ztlog: ${what} ${path}: ${(e as Error).message}`);
  }
}

/** pemCertificates splits PEM text into its CERTIFICATE blocks. */
function pemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** loadBundle reads a trust bundle: PEM certificates or a SPIFFE bundle JSON (its x509-svid keys). */
function loadBundle(path: string): string[] {
  const text = readFile(path, "trust bundle (ca)");
  if (text.trimStart().startsWith("{")) {
    let doc: { keys?: { use?: string; x5c?: string[] }[] };
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new TypeError(`ztlog: trust bundle (ca) ${path}: not PEM and not a SPIFFE bundle JSON: ${(e as Error).message}`);
    }
    const certs = (doc.keys ?? [])
      .filter((k) => k.use === "x509-svid" && Array.isArray(k.x5c) && k.x5c.length > 0)
      .map((k) => `-----BEGIN CERTIFICATE-----\n${k.x5c![0]!.match(/.{1,64}/g)!.join("\n")}\n-----END CERTIFICATE-----\n`);
    if (certs.length === 0) throw new TypeError(`ztlog: trust bundle (ca) ${path}: the SPIFFE bundle has no x509-svid keys`);
    return certs;
  }
  const certs = pemCertificates(text);
  if (certs.length === 0) throw new TypeError(`ztlog: trust bundle (ca) ${path}: no PEM CERTIFICATE blocks`);
  return certs;
}

/** uriSans lists the URI subject alternative names of a certificate. */
function uriSans(subjectAltName: string | undefined): string[] {
  return (subjectAltName ?? "")
    .split(", ")
    .filter((s) => s.startsWith("URI:"))
    .map((s) => s.slice(4));
}

/** spiffeIdOfCertificate is the one SPIFFE ID (URI SAN) of an X.509-SVID. */
function spiffeIdOfCertificate(pem: string, what: string): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (e) {
    throw new TypeError(`ztlog: ${what}: not a certificate: ${(e as Error).message}`);
  }
  const uris = uriSans(cert.subjectAltName);
  if (uris.length !== 1 || !isSpiffeId(uris[0])) {
    throw new TypeError(`ztlog: ${what}: an X.509-SVID has exactly one URI SAN, a SPIFFE ID (found ${JSON.stringify(uris)})`);
  }
  return uris[0]!;
}

/** readJwt takes a JWT-SVID, or the name of a file holding one. */
function readJwt(jwt: string): string {
  let isFile = false;
  try {
    isFile = statSync(jwt).isFile();
  } catch {
    // not a file name: the token itself
  }
  return (isFile ? readFile(jwt, "jwt") : jwt).trim();
}

/** spiffeIdOfJwt is the subject of a JWT-SVID (the agent's own credential; the service verifies it). */
function spiffeIdOfJwt(token: string): string {
  const parts = token.split(".");
  if (parts.length !== 3) throw new TypeError("ztlog: jwt: not a compact JWT (header.payload.signature), nor a file holding one");
  let sub: unknown;
  try {
    sub = (JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as { sub?: unknown }).sub;
  } catch (e) {
    throw new TypeError(`ztlog: jwt: the payload is not JSON: ${(e as Error).message}`);
  }
  if (!isSpiffeId(sub)) throw new TypeError(`ztlog: jwt: sub ${JSON.stringify(sub)} is not a SPIFFE ID; a JWT-SVID names the agent in sub`);
  return sub;
}

function positive(v: number | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new TypeError(`ztlog: ${what}: want a positive number of milliseconds, got ${v}`);
  return v;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Client talks to one ztlog service. */
export class Client {
  /** The agent's SPIFFE ID: the actor of every action it asks about. */
  readonly id: string;
  readonly server: string;
  private readonly url: URL;
  private readonly agent: Agent;
  private readonly jwt: string | undefined;
  private readonly timeout: number;
  private readonly broker: string;
  private readonly retry: Required<RetryOptions>;
  private readonly breaker: Required<BreakerOptions>;
  private readonly now: () => number;
  private issuerValue: string | undefined;
  private info: ServiceInfo | undefined;
  private jwks: JWKS | undefined;
  private jwksFetched = 0;
  private failures = 0;
  private openTill = 0;
  private trial = false;

  constructor(opts: ClientOptions) {
    if (!opts || typeof opts.server !== "string" || opts.server === "") throw new TypeError("ztlog: server is required (https://host:port)");
    let url: URL;
    try {
      url = new URL(opts.server);
    } catch {
      throw new TypeError(`ztlog: server ${JSON.stringify(opts.server)} is not a URL (want https://host:port)`);
    }
    if (url.protocol !== "https:") {
      // Over plain HTTP nothing is authenticated: the answer, the issuer and
      // the receipt keys would all come from whoever answers at that address.
      throw new TypeError(`ztlog: server ${JSON.stringify(opts.server)}: the service must be reached over https:// (TLS with its X.509-SVID)`);
    }
    if (!opts.ca) throw new TypeError("ztlog: ca is required: the trust bundle (PEM or SPIFFE bundle JSON) the service's SVID chains to");
    if (!opts.svid === !opts.jwt) throw new TypeError("ztlog: give exactly one of svid (PREFIX of PREFIX.pem and PREFIX.key, for mutual TLS) and jwt (a JWT-SVID)");
    const ca = loadBundle(opts.ca);
    let cert: string | undefined;
    let key: string | undefined;
    if (opts.svid) {
      cert = readFile(opts.svid + ".pem", "svid certificate");
      key = readFile(opts.svid + ".key", "svid key");
      const chain = pemCertificates(cert);
      if (chain.length === 0) throw new TypeError(`ztlog: svid certificate ${opts.svid}.pem: no PEM CERTIFICATE blocks`);
      this.id = spiffeIdOfCertificate(chain[0]!, `svid certificate ${opts.svid}.pem`);
    } else {
      this.jwt = readJwt(opts.jwt!);
      this.id = spiffeIdOfJwt(this.jwt);
    }
    if (opts.serverId !== undefined && !isSpiffeId(opts.serverId)) throw new TypeError(`ztlog: serverId ${JSON.stringify(opts.serverId)} is not a SPIFFE ID`);
    if (opts.broker !== undefined && opts.broker !== "" && !isSpiffeId(opts.broker)) throw new TypeError(`ztlog: broker ${JSON.stringify(opts.broker)} is not a SPIFFE ID`);
    const trustDomain = trustDomainOf(this.id);
    const serverId = opts.serverId;
    this.url = url;
    this.server = url.origin + url.pathname.replace(/\/+$/, "");
    this.timeout = positive(opts.timeout, 10_000, "timeout");
    this.broker = opts.broker ?? "";
    this.issuerValue = opts.issuer || undefined;
    this.now = opts.now ?? Date.now;
    const attempts = opts.retry?.attempts ?? 3;
    if (!Number.isInteger(attempts) || attempts < 1) throw new TypeError(`ztlog: retry.attempts: want an integer >= 1, got ${attempts}`);
    this.retry = {
      attempts,
      baseMs: positive(opts.retry?.baseMs, 100, "retry.baseMs"),
      maxMs: positive(opts.retry?.maxMs, 2000, "retry.maxMs"),
      ambiguous: opts.retry?.ambiguous ?? false,
    };
    const failures = opts.breaker?.failures ?? 5;
    if (!Number.isInteger(failures) || failures === 0) throw new TypeError(`ztlog: breaker.failures: want a positive integer (or negative to disable), got ${failures}`);
    this.breaker = { failures, cooldownMs: positive(opts.breaker?.cooldownMs, 30_000, "breaker.cooldownMs") };
    this.agent = new Agent({
      ca,
      cert,
      key,
      keepAlive: true,
      maxSockets: 16,
      minVersion: "TLSv1.2",
      rejectUnauthorized: true,
      // SPIFFE authorization replaces host name checks: the server's
      // X.509-SVID (which chained to the bundle) must name the expected
      // SPIFFE ID, or any ID of the agent's trust domain.
      checkServerIdentity: (_host: string, peer: PeerCertificate): Error | undefined => {
        const uris = uriSans(peer.subjectaltname);
        if (uris.length !== 1 || !isSpiffeId(uris[0])) {
          return new Error(`ztlog: the server's certificate is not an X.509-SVID (URI SANs ${JSON.stringify(uris)})`);
        }
        const got = uris[0]!;
        if (serverId !== undefined ? got !== serverId : trustDomainOf(got) !== trustDomain) {
          return new Error(`ztlog: the server is ${got}, want ${serverId ?? "a member of spiffe://" + trustDomain}`);
        }
        return undefined;
      },
    });
  }

  /** close releases the client's connections. */
  close(): void {
    this.agent.destroy();
  }

  /**
   * guardedCall decides req and runs fn only on a verified allow, returning
   * fn's result. A deny throws Denied; no decision throws NoDecision
   * (Ambiguous, CircuitOpen); fn's own errors are thrown as they are.
   */
  async guardedCall<T>(req: DecideRequest, fn: (decision: Decision) => T | Promise<T>): Promise<T> {
    const d = await this.decide(req);
    if (!d.allowed || !d.receipt || !d.claims) throw new Denied(d.reasons, d.index, d.correlationId);
    return fn(d);
  }

  /**
   * decide asks for a decision and verifies the answer. It returns a
   * Decision (allowed true or false) only for a verified, committed answer,
   * and throws NoDecision (or Ambiguous, CircuitOpen) otherwise.
   */
  async decide(req: DecideRequest): Promise<Decision> {
    this.admit();
    let ok = false;
    try {
      const d = await this.decideOnce(req);
      ok = true;
      return d;
    } finally {
      this.record(ok);
    }
  }

  private admit(): void {
    if (this.breaker.failures < 0) return;
    const now = this.now();
    if (this.openTill === 0) return;
    if (now < this.openTill) {
      throw new CircuitOpen(`ztlog: circuit breaker open until ${new Date(this.openTill).toISOString()} after ${this.failures} calls without a decision`);
    }
    if (this.trial) throw new CircuitOpen("ztlog: circuit breaker open: a trial call is in flight");
    this.trial = true; // half-open: this call is the trial
  }

  private record(ok: boolean): void {
    if (this.breaker.failures < 0) return;
    this.trial = false;
    if (ok) {
      this.failures = 0;
      this.openTill = 0;
      return;
    }
    this.failures++;
    if (this.failures >= this.breaker.failures) this.openTill = this.now() + this.breaker.cooldownMs;
  }

  private body(req: DecideRequest, cid: string): { body: string; fields: ActionFields } {
    if (!req || typeof req.action !== "string" || req.action === "") throw new TypeError("action: required, e.g. \"demo.echo\" or mcpToolAction(name)");
    if (typeof req.resource !== "string" || req.resource === "") throw new TypeError("resource: required, what the action acts on");
    const broker = req.broker ?? this.broker;
    if (broker !== "" && !isSpiffeId(broker)) throw new TypeError(`broker: ${JSON.stringify(broker)} is not a SPIFFE ID`);
    const ar: Record<string, unknown> = { action: req.action, resource: req.resource };
    let argsDigest = req.argsDigest ?? "";
    if (req.args !== undefined) {
      const { value } = jsonArgs(req.args);
      const d = sha256(canonicalize(value, "args"));
      if (argsDigest !== "" && argsDigest !== d) throw new TypeError(`argsDigest ${argsDigest} is not the digest of args (${d})`);
      argsDigest = d;
      ar.args = value;
    }
    if (argsDigest !== "") ar.args_digest = argsDigest;
    if (broker !== "") ar.broker = broker;
    ar.correlation_id = cid;
    return { body: JSON.stringify(ar), fields: { actor: this.id, action: req.action, resource: req.resource, argsDigest, broker } };
  }

  private async decideOnce(req: DecideRequest): Promise<Decision> {
    const cid = req?.correlationId ?? randomUUID();
    if (!CORRELATION_ID.test(cid)) {
      throw new NoDecision(`ztlog: no decision: correlationId ${JSON.stringify(cid)}: want 1 to 128 printable ASCII characters without spaces`);
    }
    let broker = req?.broker || this.broker;
    if (broker === "") {
      // The service decides for its default broker; name it, so that the
      // action digest checked below is the one the service commits.
      try {
        broker = (await this.wellKnown()).defaultBroker;
      } catch (e) {
        throw new NoDecision(`ztlog: no decision (correlation id ${cid}): ${(e as Error).message}`, cid, { cause: e });
      }
    }
    let built;
    try {
      built = this.body({ ...req, broker }, cid);
    } catch (e) {
      const msg = e instanceof CanonicalError || e instanceof TypeError ? e.message : String(e);
      throw new NoDecision(`ztlog: no decision: ${msg}`, cid, { cause: e });
    }
    const headers: Record<string, string> = { "Content-Type": "application/json", "X-Correlation-ID": cid };
    if (req.userToken) headers["X-ZT-User-Token"] = req.userToken;
    let last: Failure | undefined;
    for (let i = 0; i < this.retry.attempts; i++) {
      if (i > 0) {
        if (!last || !(last.retry || (last.ambiguous && this.retry.ambiguous))) break;
        await sleep(this.backoff(i));
      }
      let res: Attempt;
      try {
        res = await this.send("POST", "/v1/actions", built.body, headers);
      } catch (e) {
        last = e instanceof Failure ? e : new Failure(String(e), false, true);
        continue;
      }
      let ar;
      try {
        ar = parseAnswer(res.status, res.body);
      } catch (e) {
        last = classify(e, res.status);
        continue;
      }
      try {
        return await this.check(ar, built.fields, cid);
      } catch (e) {
        throw new NoDecision(`ztlog: no decision (correlation id ${cid}): ${(e as Error).message}`, cid, { cause: e });
      }
    }
    const why = last?.message ?? "no attempt made";
    if (last?.ambiguous) throw new Ambiguous(`ztlog: outcome unknown, the decision may be committed (correlation id ${cid}): ${why}`, cid, { cause: last });
    throw new NoDecision(`ztlog: no decision (correlation id ${cid}): ${why}`, cid, { cause: last });
  }

  private async check(ar: ReturnType<typeof parseAnswer>, fields: ActionFields, cid: string): Promise<Decision> {
    const broker = fields.broker ?? "";
    const digest = actionDigest(fields);
    const want = { actor: this.id, issuer: "", broker, actionDigest: digest, correlationId: cid, now: this.now(), leeway: LEEWAY_MS };
    // Issuer and keys are needed only to verify a receipt (an allow
    // without one fails in checkAnswer before any key is looked at).
    const verifying = ar.decision === "allow" && !!ar.receipt;
    if (verifying) want.issuer = await this.issuer();
    const jwks = verifying ? await this.keys(false) : { keys: [] };
    try {
      return await checkAnswer(ar, jwks, want);
    } catch (e) {
      if (!(e instanceof ReceiptError && e.kind === "unknown_key")) throw e;
      // The key may have rotated in since the set was cached.
      return await checkAnswer(ar, await this.keys(true), { ...want, now: this.now() });
    }
  }

  private backoff(attempt: number): number {
    let d = this.retry.baseMs * 2 ** (attempt - 1);
    if (d > this.retry.maxMs) d = this.retry.maxMs;
    return d / 2 + randomInt(Math.floor(d / 2) + 1);
  }

  /** issuer is the receipt issuer (log origin) the client trusts: ClientOptions.issuer, or the service's origin. */
  async issuer(): Promise<string> {
    if (!this.issuerValue) this.issuerValue = (await this.wellKnown()).origin;
    return this.issuerValue;
  }

  /**
   * defaultBroker is the broker the service decides for when a request
   * names none (default_broker of /.well-known/ztlog); "" when the service
   * has none, and then requests must name one.
   */
  async defaultBroker(): Promise<string> {
    return (await this.wellKnown()).defaultBroker;
  }

  /** wellKnown reads /.well-known/ztlog over the authenticated connection, once (a failed read is not kept). */
  private async wellKnown(): Promise<ServiceInfo> {
    if (this.info) return this.info;
    let res: Attempt;
    try {
      res = await this.send("GET", "/.well-known/ztlog");
    } catch (e) {
      throw new Error(`reading /.well-known/ztlog: ${(e as Error).message}`);
    }
    let doc: { origin?: unknown; default_broker?: unknown } | undefined;
    try {
      doc = JSON.parse(res.body) as typeof doc;
    } catch {
      doc = undefined;
    }
    const origin = doc?.origin;
    if (res.status !== 200 || typeof origin !== "string" || origin === "") {
      throw new Error(`reading /.well-known/ztlog: HTTP ${res.status}, no origin`);
    }
    const broker = doc?.default_broker ?? "";
    if (broker !== "" && !isSpiffeId(broker)) {
      throw new Error(`reading /.well-known/ztlog: default_broker ${JSON.stringify(broker)} is not a SPIFFE ID`);
    }
    this.info ??= { origin, defaultBroker: broker as string };
    return this.info;
  }

  /**
   * keys is the issuer's receipt JWKS (GET /v1/receipts/jwks.json over the
   * authenticated connection), cached; a refresh is honoured at most every
   * 10 s, and a failed refresh keeps the cached set.
   */
  async keys(refresh = false): Promise<JWKS> {
    if (this.jwks && (!refresh || Date.now() - this.jwksFetched < JWKS_MIN_REFRESH_MS)) return this.jwks;
    let res: Attempt;
    try {
      res = await this.send("GET", "/v1/receipts/jwks.json");
    } catch (e) {
      if (this.jwks) return this.jwks;
      throw new Error(`fetching receipt keys from /v1/receipts/jwks.json: ${(e as Error).message}`);
    }
    if (res.status !== 200) {
      if (this.jwks) return this.jwks;
      throw new Error(`fetching receipt keys from /v1/receipts/jwks.json: HTTP ${res.status}`);
    }
    this.jwks = parseJwks(res.body);
    this.jwksFetched = Date.now();
    return this.jwks;
  }

  /**
   * send makes one request. It throws a Failure saying whether the request
   * can have reached the service: not before the TLS handshake completed.
   */
  private send(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Attempt> {
    const h: Record<string, string | number> = { ...headers };
    if (this.jwt) h.Authorization = "Bearer " + this.jwt;
    if (body !== undefined) h["Content-Length"] = Buffer.byteLength(body);
    return new Promise<Attempt>((resolve, reject) => {
      let connected = false;
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        // Before the handshake completed no byte of the request was sent.
        reject(new Failure(err.message, !connected, connected));
      };
      const req = request(
        {
          protocol: "https:",
          hostname: this.url.hostname.replace(/^\[|\]$/g, ""),
          port: this.url.port || 443,
          path: this.url.pathname.replace(/\/+$/, "") + path,
          method,
          headers: h,
          agent: this.agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let n = 0;
          res.on("data", (c: Buffer) => {
            n += c.length;
            if (n > MAX_ANSWER) {
              req.destroy(new Error(`the answer is longer than ${MAX_ANSWER} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on("end", () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
          });
          res.on("error", fail);
          res.on("aborted", () => fail(new Error("the answer was cut short")));
        },
      );
      req.on("socket", (s: Socket) => {
        const tls = s as TLSSocket;
        if (!tls.connecting && tls.authorized) connected = true; // a kept-alive connection
        else tls.once("secureConnect", () => (connected = true));
      });
      req.on("error", fail);
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.timeout} ms`)), this.timeout);
      req.end(body);
    });
  }
}

/** classify turns an answer that is not a decision into a Failure. */
function classify(e: unknown, status: number): Failure {
  if (e instanceof NotADecision) {
    if (status === 503) {
      // Nothing was committed when the log pushed back or the service was
      // shutting down; anything else at 503 may have been.
      const safe = e.code === "log_pushback" || e.code === "shutting_down";
      return new Failure(e.message, safe, !safe);
    }
    return new Failure(e.message, false, false);
  }
  if (e instanceof Inconsistent) return new Failure(e.message, false, e.unparsable);
  return new Failure(String(e), false, true);
}
