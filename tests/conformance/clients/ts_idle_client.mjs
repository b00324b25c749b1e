// The TypeScript SDK's own client left idle between calls, for tests/interop.
//
// Usage: node ts_idle_client.mjs URL SESSIONS [--no-notice]
// Opens SESSIONS sessions (the transport opens its standalone GET stream after `initialized`, as it
// does in every application), calls `echo` on each, prints {"ready": [ids]} and waits for a line
// on stdin: the Python test lets the sessions hibernate and sends a notification from outside any
// request meanwhile. Then it waits (at most 10 s) until every client heard it, calls `echo` on
// each again, terminates them and prints one JSON report. The Python test decides. With
// --no-notice (the benchmark's real-client phase) it waits for no notification.

import readline from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [url, sessionsArg, flag] = process.argv.slice(2);
const awaitNotice = flag !== "--no-notice";
const sessions = Number(sessionsArg ?? "4");
const heard = Array.from({ length: sessions }, () => 0);

async function connect(index) {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: "interop-ts-idle", version: "1.0.0" });
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
    heard[index] += 1;
  });
  await client.connect(transport);
  return { client, transport };
}

function text(result) {
  return result.content.filter((part) => part.type === "text").map((part) => part.text).join("");
}

const everyone = await Promise.all(Array.from({ length: sessions }, (_, index) => connect(index)));
const before = await Promise.all(
  everyone.map(({ client }, index) => client.callTool({ name: "echo", arguments: { text: `b${index}` } }).then(text)),
);
process.stdout.write(JSON.stringify({ ready: everyone.map(({ transport }) => transport.sessionId) }) + "\n");

const lines = readline.createInterface({ input: process.stdin });
await new Promise((resolve) => lines.once("line", resolve));
lines.close();

const deadline = Date.now() + 10000;
while (awaitNotice && heard.some((count) => count === 0) && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 20));
}
const after = await Promise.all(
  everyone.map(({ client }, index) => client.callTool({ name: "echo", arguments: { text: `a${index}` } }).then(text)),
);
await Promise.all(everyone.map(({ transport }) => transport.terminateSession()));
await Promise.all(everyone.map(({ client }) => client.close()));
process.stdout.write(JSON.stringify({ before, heard, after }) + "\n");
