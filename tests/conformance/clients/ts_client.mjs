// The TypeScript SDK's own client against one of our servers, for tests/interop.
//
// Usage: node ts_client.mjs URL SESSIONS
// Opens one session (initialize), lists and calls tools, then opens SESSIONS more at once and calls
// `echo` on each concurrently, terminates them all (DELETE through the transport) and posts to each
// terminated session id again by hand. Prints one JSON object on stdout; the Python test decides.
// It lives under tests/conformance so that its imports resolve that directory's node_modules.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, sessionsArg] = process.argv.slice(2);
const sessions = Number(sessionsArg ?? "8");

async function connect() {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: "interop-ts", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

function text(result) {
  return result.content.filter((part) => part.type === "text").map((part) => part.text).join("");
}

/** A request to a session id after its termination, by hand: what status and body come back. */
async function postAfterTerminate(sessionId, protocolVersion) {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-session-id": sessionId,
      "mcp-protocol-version": protocolVersion,
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 99, method: "tools/list" }),
  });
  return { status: response.status, body: await response.text() };
}

const first = await connect();
const report = {
  server: first.client.getServerVersion(),
  protocolVersion: first.transport.protocolVersion,
  sessionId: first.transport.sessionId,
  tools: (await first.client.listTools()).tools.map((tool) => tool.name).sort(),
  add: text(await first.client.callTool({ name: "add", arguments: { a: 2, b: 3 } })),
};

const many = await Promise.all(Array.from({ length: sessions }, () => connect()));
report.concurrentSessionIds = many.map(({ transport }) => transport.sessionId);
report.concurrentEchoes = await Promise.all(
  many.map(({ client }, index) => client.callTool({ name: "echo", arguments: { text: `s${index}` } }).then(text)),
);

const everyone = [first, ...many];
const ids = everyone.map(({ transport }) => transport.sessionId);
await Promise.all(everyone.map(({ transport }) => transport.terminateSession()));
report.sessionIdsAfterTerminate = everyone.map(({ transport }) => transport.sessionId ?? null);
report.afterTerminate = await Promise.all(ids.map((id) => postAfterTerminate(id, report.protocolVersion)));
await Promise.all(everyone.map(({ client }) => client.close()));

process.stdout.write(JSON.stringify(report) + "\n");
