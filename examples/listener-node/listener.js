#!/usr/bin/env node
// Listens for runtime_sweeper events and prints each one exactly once, in order,
// as a JSON line {"id","type","workspace_id"} on stdout.  After every (re)connect
// it first catches up through runtime_sweeper.events_since(), so events sent while
// it was disconnected (server restart, network loss, listener restart with
// --state) are not lost; ids it has already handled are skipped.
//
//   node listener.js [--dsn URL] [--channel NAME] [--state FILE] [--max-seconds N]
//
// Connection settings come from --dsn (postgresql://user@host:port/db, or
// postgresql:///db?host=/socket/dir) or the PG* environment variables.
'use strict';

const fs = require('fs');
const { parseArgs } = require('util');
const { Client } = require('pg');

const { values: opt } = parseArgs({
  options: {
    dsn: { type: 'string' },
    channel: { type: 'string', default: 'runtime_sweeper' },
    state: { type: 'string' },
    'max-seconds': { type: 'string' },
  },
});

const BATCH = 1000;             // rows per events_since() call
const MIN_DELAY = 100;          // reconnect back-off, ms
const MAX_DELAY = 2000;
const KEEPALIVE = 5000;         // idle ms between liveness checks of the connection

const log = (msg) => process.stderr.write(`listener: ${msg}\n`);

// The id of the last event handled; kept in the state file when there is one.
let lastId = 0;
if (opt.state && fs.existsSync(opt.state)) lastId = Number(fs.readFileSync(opt.state, 'utf8').trim() || 0);

// Wakes the main loop: a notification arrived, the connection died, or we stop.
let poke = () => {};
const pause = (ms) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  poke = () => { clearTimeout(timer); resolve(); };
});

let stopping = false;
const stop = () => { stopping = true; poke(); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (opt['max-seconds']) setTimeout(stop, Number(opt['max-seconds']) * 1000).unref();

// Prints one event and remembers its id (null: the event log is off).
function handle(id, event) {
  process.stdout.write(JSON.stringify({ id, type: event.type, workspace_id: event.workspace_id }) + '\n');
  if (id === null) return;
  lastId = id;
  if (opt.state) {
    fs.writeFileSync(`${opt.state}.tmp`, `${id}\n`);
    fs.renameSync(`${opt.state}.tmp`, opt.state);
  }
}

// Handles every logged event after lastId; returns how many there were.
async function catchUp(client) {
  let n = 0;
  for (;;) {
    const { rows } = await client.query(
      'SELECT id, channel, event FROM runtime_sweeper.events_since($1, $2)', [lastId, BATCH]);
    for (const row of rows) {
      // bigint arrives as a string; event ids stay far below 2^53
      if (row.channel === opt.channel) { handle(Number(row.id), row.event); n++; } else lastId = Number(row.id);
    }
    if (rows.length < BATCH) return n;
  }
}

// One notification: its envelope starts with the event log id (event_log = on).
async function onNotification(client, payload) {
  const event = JSON.parse(payload);
  if (event.id === undefined) return handle(null, event); // event_log off: no catch-up possible
  if (event.id > lastId + 1) await catchUp(client); // something is missing (or an unused id)
  if (event.id <= lastId) return;                   // handled already (by a catch-up)
  handle(event.id, event);
}

// One connection: LISTEN, catch up, then follow notifications until it dies
// or we stop.  Returns whether it got as far as listening.
async function session() {
  const client = new Client(opt.dsn ? { connectionString: opt.dsn } : undefined);
  const inbox = [];
  let lost = null;
  let listening = false;
  client.on('notification', (msg) => { inbox.push(msg.payload); poke(); });
  client.on('error', (err) => { lost = lost || err; poke(); });
  client.on('end', () => { lost = lost || new Error('connection closed'); poke(); });
  try {
    await client.connect();
    await client.query(`LISTEN ${client.escapeIdentifier(opt.channel)}`);
    listening = true;
    log(`connected, caught up ${await catchUp(client)} events (last id ${lastId})`);
    while (!stopping && !lost) {
      if (inbox.length) {
        await onNotification(client, inbox.shift());
      } else {
        await pause(KEEPALIVE);
        if (!stopping && !lost && !inbox.length) await client.query('SELECT 1');
      }
    }
  } catch (err) {
    lost = lost || err;
  }
  await client.end().catch(() => {});
  if (lost && !stopping) log(`error: ${lost.message}`);
  return listening;
}

async function main() {
  let delay = MIN_DELAY;
  while (!stopping) {
    if (await session()) delay = MIN_DELAY;
    if (stopping) break;
    log(`reconnecting in ${delay} ms`);
    await pause(delay);
    delay = Math.min(delay * 2, MAX_DELAY);
  }
  log(`stopped at id ${lastId}`);
}

main().catch((err) => { log(`fatal: ${err.stack}`); process.exit(1); });
