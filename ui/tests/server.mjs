// Starts the real bondgate binary for one test file: its own temporary data
// directory (SQLite), a free HTTP port and a free embedded-broker port (the
// server picks them: port 0, read back from its JSON log line), a gate and
// a pack station, and the admin password the tests log in with. The one
// place that knows how the server is launched, so it can later run
// `bondgate demo` instead.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = process.env.BONDGATE_BIN ? path.resolve(process.env.BONDGATE_BIN) : path.resolve(UI_DIR, '..', 'target', 'debug', 'bondgate');
export const ADMIN_PASSWORD = 'ui-test-admin-password';
/** The customs gateway's HMAC key the server trusts (tests sign receipts with it). */
export const CUSTOMS_KEY_ID = 'gw-ui';
export const CUSTOMS_KEY_SECRET = Buffer.from('ui-test-customs-gateway-secret-0').toString('base64');
/** Longest wait for the server to say it listens: a debug build on a busy 2-core machine. */
const START_MS_MAX = 60_000;

const CONFIG = `
# Written by ui/tests/server.mjs.
wave_max_orders = 0

[[gate]]
id = "G1"
pulse_ms = 300
confirm_timeout_ms = 1500
output = { mqtt = true }

[[station]]
id = "P1"
scale = { mqtt = true }
printer = { mqtt = true }
`;

/** A running server: `url` (http://127.0.0.1:PORT), `mqtt` (host, port), `stop()`. */
export async function startServer() {
  const dir = await mkdtemp(path.join(tmpdir(), 'bondgate-ui-'));
  await writeFile(path.join(dir, 'bondgate.toml'), CONFIG);
  return launch(dir, ['serve', '--config', path.join(dir, 'bondgate.toml'), '--data-dir', path.join(dir, 'data')], {
    BONDGATE_ADMIN_PASSWORD: ADMIN_PASSWORD,
    BONDGATE_CUSTOMS_KEYS: `${CUSTOMS_KEY_ID}=hmac:${CUSTOMS_KEY_SECRET}`,
  });
}

/** The demo's users and their passwords (`src/demo/seed.rs`). */
export const DEMO_PASSWORDS = { admin: 'demo-admin', manager: 'demo-manager', guard: 'demo-guard', packer: 'demo-packer', picker1: 'demo-picker' };

/**
 * `bondgate demo`, the README's main command: the whole floor simulated on
 * its real transports (pty scales, TCP and serial printers, relays, the
 * edge bridges, PDAs) with its robots at work, in a temporary directory.
 * Same shape as `startServer()`.
 */
export async function startDemo(extra = []) {
  const dir = await mkdtemp(path.join(tmpdir(), 'bondgate-ui-demo-'));
  return launch(dir, ['demo', '--listen', '127.0.0.1:0', '--mqtt-listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'demo'), ...extra], {});
}

async function launch(dir, args, vars) {
  const env = { ...process.env };
  for (const k of ['MQTT_URL', 'DATABASE_URL', 'BONDGATE_DATA_DIR', 'BONDGATE_CONFIG', 'BONDGATE_PII_KEY', 'BONDGATE_ADMIN_PASSWORD', 'BONDGATE_CUSTOMS_KEYS']) delete env[k];
  Object.assign(env, {
    BONDGATE_LISTEN: '127.0.0.1:0',
    BONDGATE_MQTT_LISTEN: '127.0.0.1:0',
    BONDGATE_LOG_FORMAT: 'json',
    RUST_LOG: env.RUST_LOG || 'info,sqlx=warn,rumqttd=warn',
    ...vars,
  });
  const child = spawn(BIN, args, {
    cwd: dir,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log = [];
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bondgate did not start within ${START_MS_MAX} ms:\n${log.join('\n')}`)), START_MS_MAX);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${BIN} (build it with cargo build --bin bondgate, or set BONDGATE_BIN): ${e.message}`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bondgate ${args[0]} exited with ${code}:\n${log.join('\n')}`));
    });
    createInterface({ input: child.stderr }).on('line', (line) => {
      if (log.length < 2000) log.push(line);
      let v;
      try {
        v = JSON.parse(line);
      } catch {
        return;
      }
      if (v.fields?.message === 'bondgate listening') {
        clearTimeout(timer);
        const mqtt = new URL(v.fields.mqtt.replace(/^mqtt:/, 'http:'));
        resolve({ url: `http://${v.fields.addr}`, mqtt: { host: mqtt.hostname, port: Number(mqtt.port) } });
      }
    });
  });
  let where;
  try {
    where = await ready;
  } catch (e) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    ...where,
    dir,
    log,
    /** Stops the server (SIGTERM, as an operator would) and removes its data. */
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
