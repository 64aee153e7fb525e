// Sends CloudEvents to a running evrouted with the CloudEvents SDK (npm `cloudevents`), in each
// HTTP binding mode: structured (HTTP.structured), binary (HTTP.binary) with JSON, text and
// binary data, and batched (the SDK's JSON form of each event in one array).
//
//   node cloudevents_send.js http://127.0.0.1:PORT/v1/events
//
// Prints one JSON object to stdout: {"<message name>": <evrouted's JSON reply>, ...}. Exits 1 on
// a transport error. Driven by tests/integration/cloudevents_interop_test.cpp, which checks what
// evrouted made of each event.
"use strict";
const { CloudEvent, HTTP, Mode, emitterFor, httpTransport } = require("cloudevents");

async function main() {
  const url = process.argv[2];
  if (!url) throw new Error("usage: node cloudevents_send.js URL");
  const transport = httpTransport(url);
  const structured = emitterFor(transport, { mode: Mode.STRUCTURED });
  const binary = emitterFor(transport, { mode: Mode.BINARY });
  const replies = {};
  const record = (name, response) => {
    replies[name] = JSON.parse(response.body);
  };

  record("structured", await structured(new CloudEvent({
    id: "sdk-structured-1",
    source: "/interop/sdk",
    type: "com.example.order.created",
    subject: "order-1",
    datacontenttype: "application/json",
    data: { order: 1, items: ["a", "b"] },
    tenant: "acme",
  })));

  record("binary-json", await binary(new CloudEvent({
    id: "sdk-binary-json-1",
    source: "/interop/sdk",
    type: "com.example.order.shipped",
    datacontenttype: "application/json",
    data: { order: 2 },
    tenant: "acme",
  })));

  record("binary-text", await binary(new CloudEvent({
    id: "sdk-binary-text-1",
    source: "/interop/sdk",
    type: "com.example.note",
    datacontenttype: "text/plain",
    data: "héllo wörld",
  })));

  record("binary-bytes", await binary(new CloudEvent({
    id: "sdk-binary-bytes-1",
    source: "/interop/sdk",
    type: "com.example.blob",
    datacontenttype: "application/octet-stream",
    data: Buffer.from([0, 1, 2, 0xfe, 0xff]),
  })));

  // The SDK has no batch serializer: a batch is the events' JSON format in an array.
  const batch = [
    new CloudEvent({ id: "sdk-batch-1", source: "/interop/sdk", type: "com.example.batch", data: { n: 1 } }),
    new CloudEvent({ id: "sdk-batch-2", source: "/interop/sdk", type: "com.example.batch", data: { n: 2 } }),
  ];
  record("batch", await transport({
    headers: { "content-type": "application/cloudevents-batch+json" },
    body: JSON.stringify(batch),
  }));

  // What evrouted rejects: an event the SDK would not build (no type), sent structured by hand.
  record("invalid", await transport({
    headers: { "content-type": "application/cloudevents+json" },
    body: JSON.stringify({ specversion: "1.0", id: "x", source: "/interop/sdk" }),
  }));

  process.stdout.write(JSON.stringify(replies) + "\n");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
