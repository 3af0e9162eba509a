// A real A2A client (@a2a-js/sdk 0.3 ClientFactory) for the A2A gate's tests.
// usage: node client.cjs BASE_URL send|stream SKILL TEXT
// Reads the agent card at BASE_URL, sends one message (params.message.metadata.skill
// = SKILL unless SKILL is "-"), and prints one JSON line:
// {"ok":true,"text":"<the agent's answer>"} or {"ok":false,"error":"<message>"}.
const crypto = require('node:crypto');
const { ClientFactory } = require('@a2a-js/sdk/client');

async function main() {
  const [base, mode, skill, text] = process.argv.slice(2);
  if (!base || !mode || !skill || text === undefined) {
    console.error('usage: node client.cjs BASE_URL send|stream SKILL TEXT');
    process.exit(2);
  }
  const client = await new ClientFactory().createFromUrl(base);
  const message = { kind: 'message', messageId: crypto.randomUUID(), role: 'user', parts: [{ kind: 'text', text }] };
  if (skill !== '-') message.metadata = { skill };
  const texts = [];
  const collect = (ev) => {
    if (ev && ev.kind === 'message') texts.push(...ev.parts.filter((p) => p.kind === 'text').map((p) => p.text));
  };
  if (mode === 'stream') {
    for await (const ev of client.sendMessageStream({ message })) collect(ev);
  } else {
    collect(await client.sendMessage({ message }));
  }
  return texts.join('');
}

main().then(
  (text) => console.log(JSON.stringify({ ok: true, text })),
  (err) => console.log(JSON.stringify({ ok: false, error: String(err && err.message ? err.message : err) })),
);
