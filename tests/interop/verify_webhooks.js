// Verifies webhook requests captured from evrouted with the `standardwebhooks` package (the
// Standard Webhooks reference library for JavaScript): an implementation independent of evroute's.
//
//   node verify_webhooks.js CAPTURE.json
//
// CAPTURE.json: {"secrets": ["whsec_..."], "wrong_secret": "whsec_...",
//                "requests": [{"body": "...", "headers": {"webhook-id": ..., ...}}]}
// Every request must verify with each secret (each one signed it), and must not verify with
// wrong_secret or with its body changed (so the check can fail). Prints one line per problem and
// exits 1 if there was any; else prints "verified N request(s) with M secret(s)" and exits 0.
"use strict";
const fs = require("fs");
const { Webhook } = require("standardwebhooks");

const capture = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
let problems = 0;
const fail = (msg) => {
  console.log(msg);
  problems++;
};
if (!capture.requests.length) fail("no requests captured");
capture.requests.forEach((req, i) => {
  const id = req.headers["webhook-id"];
  for (const secret of capture.secrets) {
    try {
      new Webhook(secret).verify(req.body, req.headers);
    } catch (e) {
      fail(`request ${i} (${id}): does not verify with ${secret}: ${e.message}`);
    }
  }
  try {
    new Webhook(capture.wrong_secret).verify(req.body, req.headers);
    fail(`request ${i} (${id}): verifies with the wrong secret`);
  } catch (e) {}
  try {
    new Webhook(capture.secrets[0]).verify(req.body + " ", req.headers);
    fail(`request ${i} (${id}): verifies with a changed body`);
  } catch (e) {}
});
if (problems) process.exit(1);
console.log(`verified ${capture.requests.length} request(s) with ${capture.secrets.length} secret(s)`);
