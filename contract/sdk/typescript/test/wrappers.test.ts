// The framework wrappers, invoked directly (no model call) against a real
// `ztlog dev`: an allowed tool runs its body, a denied one never does.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";

import { tool as lcTool } from "@langchain/core/tools";
import { RunContext } from "@openai/agents";
import { z } from "zod";

import { Client, Denied, NoDecision } from "../src/index.js";
import { guardTool } from "../src/langchain.js";
import { guardedTool } from "../src/openai-agents.js";
import { DEMO_BROKER, freePort, startDev, ztlogBinary, type Dev } from "./dev.js";

const { bin, skip } = ztlogBinary();

describe("guarded tool wrappers against a real ztlog dev", { skip }, () => {
  let dev: Dev;
  let client: Client;
  before(async () => {
    dev = await startDev(bin!);
    client = new Client({ server: dev.url, svid: join(dev.devDir, "agent"), ca: join(dev.devDir, "bundle.pem"), broker: DEMO_BROKER });
  });
  after(async () => {
    client?.close();
    await dev?.stop();
  });

  /** A LangChain tool whose body counts its runs. */
  function echoTool() {
    const body = { runs: 0 };
    const t = lcTool(
      async ({ text }: { text: string }) => {
        body.runs++;
        return `echo: ${text}`;
      },
      { name: "echo", description: "echoes its input", schema: z.object({ text: z.string() }) },
    );
    return { t, body };
  }

  test("LangChain: an allowed tool runs its body and returns its output", async () => {
    const { t, body } = echoTool();
    const safe = guardTool(client, t, { action: "demo.echo", resource: "demo://hello" });
    const out = await safe.invoke({ text: "hi" });
    assert.equal(out, "echo: hi");
    assert.equal(body.runs, 1);
  });

  test("LangChain: the wrapper keeps the tool's name, description and schema", () => {
    const { t } = echoTool();
    const safe = guardTool(client, t, { action: "demo.echo", resource: "demo://hello" });
    assert.equal(safe.name, "echo");
    assert.equal(safe.description, "echoes its input");
    assert.equal(safe.schema, t.schema);
  });

  test("LangChain: a denied tool throws Denied and never runs its body", async () => {
    const { t, body } = echoTool();
    const safe = guardTool(client, t, { action: "aws.ec2.terminate_instances", resource: "i-demo" });
    await assert.rejects(safe.invoke({ text: "hi" }), (e: unknown) => e instanceof Denied && e.reasons[0]?.code === "action.forbidden");
    assert.equal(body.runs, 0);
  });

  test("LangChain: an invalid input is refused before anything is asked or run", async () => {
    const { t, body } = echoTool();
    const safe = guardTool(client, t, { action: "demo.echo", resource: "demo://hello" });
    await assert.rejects(safe.invoke({ text: 42 } as never));
    assert.equal(body.runs, 0);
  });

  test("LangChain: invoked with a tool call, an allow yields a ToolMessage of the body's output", async () => {
    const { t, body } = echoTool();
    const safe = guardTool(client, t, { action: "demo.echo", resource: "demo://hello" });
    const msg = (await safe.invoke({ id: "call_1", name: "echo", args: { text: "yo" }, type: "tool_call" })) as { content: unknown; tool_call_id: string };
    assert.equal(msg.content, "echo: yo");
    assert.equal(msg.tool_call_id, "call_1");
    assert.equal(body.runs, 1);
  });

  /** An Agents SDK function tool whose body counts its runs. */
  function agentsTool(action: string, resource: string, extra: Record<string, unknown> = {}) {
    const body = { runs: 0 };
    const t = guardedTool(
      client,
      {
        name: "echo",
        description: "echoes its input",
        parameters: z.object({ text: z.string() }),
        execute: async ({ text }: { text: string }) => {
          body.runs++;
          return `echo: ${text}`;
        },
        ...extra,
      },
      { action, resource },
    );
    return { t, body };
  }

  test("OpenAI Agents: an allowed tool runs its body and returns its output", async () => {
    const { t, body } = agentsTool("demo.echo", "demo://hello");
    const out = await t.invoke(new RunContext(), JSON.stringify({ text: "hi" }));
    assert.equal(out, "echo: hi");
    assert.equal(body.runs, 1);
  });

  test("OpenAI Agents: a denied tool never runs its body; the model is told why", async () => {
    const { t, body } = agentsTool("aws.ec2.terminate_instances", "i-demo");
    const out = await t.invoke(new RunContext(), JSON.stringify({ text: "hi" }));
    assert.match(String(out), /denied: action\.forbidden/);
    assert.equal(body.runs, 0);
  });

  test("OpenAI Agents: with errorFunction null a deny is thrown as Denied", async () => {
    const { t, body } = agentsTool("aws.ec2.terminate_instances", "i-demo", { errorFunction: null });
    await assert.rejects(t.invoke(new RunContext(), JSON.stringify({ text: "hi" })), Denied);
    assert.equal(body.runs, 0);
  });

  test("OpenAI Agents: service unreachable, the body never runs", async () => {
    const port = await freePort();
    const down = new Client({ server: `https://127.0.0.1:${port}`, svid: join(dev.devDir, "agent"), ca: join(dev.devDir, "bundle.pem"), retry: { attempts: 1 } });
    const body = { runs: 0 };
    const t = guardedTool(
      down,
      {
        name: "echo",
        description: "echoes its input",
        parameters: z.object({ text: z.string() }),
        errorFunction: null,
        execute: async () => {
          body.runs++;
          return "ran";
        },
      },
      { action: "demo.echo", resource: "demo://hello" },
    );
    await assert.rejects(t.invoke(new RunContext(), JSON.stringify({ text: "hi" })), NoDecision);
    assert.equal(body.runs, 0);
    down.close();
  });
});
