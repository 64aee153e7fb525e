// Reads messages from NATS with the official npm client (@nats-io/transport-node and
// @nats-io/jetstream, pinned in package-lock.json): an independent check of what evroute (or a test
// using libnats) put there.
//
//   node nats_read.mjs --servers nats://127.0.0.1:P1,... --stream S --subject SUBJ --count N
//                      [--timeout-ms T] [--token TOKEN]
//     reads the first N messages of stream S on SUBJ with an ordered consumer from the start.
//   node nats_read.mjs --core --servers ... --subject SUBJ --count N [--timeout-ms T]
//     subscribes with core NATS (no JetStream), prints READY once the subscription reached the
//     server, then the first N messages that arrive.
//
// Prints one JSON line per message: {"subject","seq","headers":{name:value},"data":<utf-8 string>}
// ("seq" is null in --core mode; a header given several times has its values joined by ", ").
// Exits 0 once N were read, 1 on timeout (after printing what it got), 2 on bad arguments.
import { connect } from "@nats-io/transport-node";
import { jetstream, DeliverPolicy } from "@nats-io/jetstream";

function parseArgs(argv) {
  const args = { timeoutMs: 10000, core: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--servers") args.servers = value().split(",");
    else if (a === "--stream") args.stream = value();
    else if (a === "--subject") args.subject = value();
    else if (a === "--count") args.count = Number(value());
    else if (a === "--timeout-ms") args.timeoutMs = Number(value());
    else if (a === "--token") args.token = value();
    else if (a === "--core") args.core = true;
    else usage(`unknown argument ${a}`);
  }
  if (!args.servers || !args.subject || !(args.count > 0)) usage("need --servers, --subject, --count");
  if (!args.core && !args.stream) usage("need --stream (or --core)");
  return args;
}

function usage(why) {
  console.error(`nats_read.mjs: ${why}`);
  process.exit(2);
}

function print(m, seq) {
  const headers = {};
  if (m.headers) {
    for (const [name, values] of m.headers) headers[name] = values.join(", ");
  }
  process.stdout.write(JSON.stringify({ subject: m.subject, seq, headers, data: m.string() }) + "\n");
}

// A request the server did not answer in time.
function unanswered(err) {
  for (let e = err; e; e = e.cause) {
    if (e.name === "TimeoutError") return true;
  }
  return false;
}

const args = parseArgs(process.argv.slice(2));
let read = 0;
const timer = setTimeout(() => {
  console.error(`nats_read.mjs: timed out after ${args.timeoutMs} ms with ${read} of ${args.count}`);
  process.exit(1);
}, args.timeoutMs);

const nc = await connect({ servers: args.servers, token: args.token, maxReconnectAttempts: -1 });
if (args.core) {
  const sub = nc.subscribe(args.subject, { max: args.count });
  await nc.flush();
  process.stdout.write("READY\n");
  for await (const m of sub) {
    print(m, null);
    if (++read === args.count) break;
  }
} else {
  // Each JetStream API request waits up to 5 s (the client's default) for an answer. A cluster that
  // has just started, on a machine busy with other tests, can leave a consumer's creation
  // unanswered that long (seen once in CI, on a 3-node cluster 5 s old), so an unanswered
  // creation is asked again until the overall timer ends the run. A creation answered late
  // leaves an unused ephemeral consumer, which the server removes once it is inactive.
  const js = jetstream(nc);
  let consumer;
  for (let attempt = 1; ; attempt++) {
    try {
      consumer = await js.consumers.get(args.stream, {
        filter_subjects: args.subject,  // a string: `filter_subject`, which 2.9 understands
        deliver_policy: DeliverPolicy.All,
      });
      break;
    } catch (err) {
      if (!unanswered(err)) throw err;
      console.error(`nats_read.mjs: creating the consumer got no answer (${err.name}, attempt ${attempt}); asking again`);
    }
  }
  const messages = await consumer.consume();
  for await (const m of messages) {
    print(m, m.seq);
    if (++read === args.count) break;
  }
  await messages.close();
}
clearTimeout(timer);
await nc.close();
process.exit(0);
