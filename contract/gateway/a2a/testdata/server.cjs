// A real A2A server (@a2a-js/sdk 0.3, express) for the A2A gate's tests.
// usage: node server.cjs RECORD_FILE
// Serves the agent "Echo Agent" (skills echo and transfer) on 127.0.0.1, a
// free port; prints "LISTENING <port>" once ready. Every message that
// reaches the agent is appended to RECORD_FILE as one JSON line
// {messageId, skill, text}: the test's proof, on the server side, of what
// was and was not forwarded. The agent answers "echo: <text>".
const fs = require('node:fs');
const crypto = require('node:crypto');
const express = require('express');
const { DefaultRequestHandler, InMemoryTaskStore } = require('@a2a-js/sdk/server');
const { jsonRpcHandler, UserBuilder } = require('@a2a-js/sdk/server/express');

const record = process.argv[2];
if (!record) {
  console.error('usage: node server.cjs RECORD_FILE');
  process.exit(2);
}

class EchoExecutor {
  async execute(ctx, bus) {
    const m = ctx.userMessage;
    const text = (m.parts || []).filter((p) => p.kind === 'text').map((p) => p.text).join('');
    fs.appendFileSync(record, JSON.stringify({ messageId: m.messageId, skill: (m.metadata || {}).skill || '', text }) + '\n');
    bus.publish({
      kind: 'message',
      messageId: crypto.randomUUID(),
      role: 'agent',
      parts: [{ kind: 'text', text: 'echo: ' + text }],
      contextId: ctx.contextId,
    });
    bus.finished();
  }
  cancelTask = async () => {};
}

const app = express();
const server = app.listen(0, '127.0.0.1', () => {
  const port = server.address().port;
  const card = {
    name: 'Echo Agent',
    description: 'Echoes what it is sent (a test agent for the ztlog A2A gate).',
    protocolVersion: '0.3.0',
    version: '1.0.0',
    url: `http://127.0.0.1:${port}/a2a/jsonrpc`,
    preferredTransport: 'JSONRPC',
    skills: [
      { id: 'echo', name: 'Echo', description: 'echo the text', tags: ['echo'] },
      { id: 'transfer', name: 'Transfer', description: 'move money (never allowed)', tags: ['payments'] },
    ],
    capabilities: { streaming: true, pushNotifications: false },
    defaultInputModes: ['text'],
    defaultOutputModes: ['text'],
  };
  const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), new EchoExecutor());
  app.use('/a2a/jsonrpc', jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
  app.get('/.well-known/agent-card.json', (req, res) => res.json(card));
  console.log('LISTENING ' + port);
});
