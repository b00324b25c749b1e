// The TypeScript SDK's client against a cluster (tests/cluster/test_cluster_clients.py).
//
// Usage: node ts_cluster_client.mjs URL TOKEN SESSIONS
// Opens SESSIONS sessions with a bearer token and calls `where` on each, prints one JSON line
// (session id and answering node of each), then waits for a line on stdin: meanwhile the test
// kills a node. Then it calls `where` on every session again and prints a second JSON line with
// each answer or error. The transports are never reconnected: the session ids are the first ones.

import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, sessionsArg] = process.argv.slice(2);
const sessions = Number(sessionsArg ?? "8");

function text(result) {
  return result.content.filter((part) => part.type === "text").map((part) => part.text).join("");
}

async function connect() {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "cluster-ts", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

async function whereAll(everyone) {
  return Promise.all(
    everyone.map(async ({ client, transport }) => {
      try {
        const answer = text(await client.callTool({ name: "where", arguments: {} }));
        return { sessionId: transport.sessionId, where: answer };
      } catch (error) {
        return { sessionId: transport.sessionId, error: String(error) };
      }
    }),
  );
}

const everyone = await Promise.all(Array.from({ length: sessions }, () => connect()));
console.log(JSON.stringify(await whereAll(everyone)));
const lines = createInterface({ input: process.stdin });
for await (const _ of lines) break;
console.log(JSON.stringify(await whereAll(everyone)));
await Promise.all(everyone.map(({ transport }) => transport.terminateSession().catch(() => {})));
process.exit(0);
