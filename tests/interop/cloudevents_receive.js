// Parses HTTP requests that evroute's http sink sent, with the CloudEvents SDK (npm
// `cloudevents`): HTTP.toEvent() on each, then the SDK's strict validation.
//
//   node cloudevents_receive.js requests.json
//
// requests.json: [{"headers": {"name": "value", ...}, "body_base64": "..."}, ...]
// Prints a JSON array to stdout, one entry per request: the event as the SDK reads it (its
// toJSON(), with binary data as data_base64), or {"error": "..."} when the SDK rejects it.
// Driven by tests/integration/cloudevents_interop_test.cpp.
"use strict";
const fs = require("fs");
const { HTTP } = require("cloudevents");

const requests = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = requests.map(({ headers, body_base64 }) => {
  const bytes = Buffer.from(body_base64, "base64");
  const type = Object.entries(headers).find(([k]) => k.toLowerCase() === "content-type");
  // Binary data stays bytes; everything else is text, as a Node.js HTTP server would hand it over.
  const body = type && type[1].startsWith("application/octet-stream") ? bytes : bytes.toString("utf8");
  try {
    const event = HTTP.toEvent({ headers, body });
    event.validate();  // throws on anything CloudEvents 1.0 does not allow
    const json = event.toJSON();
    if (Buffer.isBuffer(json.data)) json.data_base64 = json.data.toString("base64");
    if (json.data_base64) delete json.data;
    return json;
  } catch (err) {
    return { error: String(err && err.message ? err.message : err) + " " + JSON.stringify(err.errors || "") };
  }
});
process.stdout.write(JSON.stringify(out) + "\n");
