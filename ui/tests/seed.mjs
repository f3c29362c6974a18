// Drives the server's HTTP API the way the integration and the office do,
// to put in place what a screen test needs: users, stock, an order, a wave,
// a picked and packed parcel. Never writes to the database directly.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import net from 'node:net';
import { ADMIN_PASSWORD, CUSTOMS_KEY_ID, CUSTOMS_KEY_SECRET } from './server.mjs';

export const SKU = 'SKU-1';
export const EAN = '6901234567892';
export const PASSWORD = 'a-long-password';

/** Calls the API; returns { status, body }. */
export async function call(server, token, method, path, body) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${server.url}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Calls the API and asserts the status. */
export async function ok(server, token, method, path, body, status = 200) {
  const r = await call(server, token, method, path, body);
  assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function login(server, username, password = PASSWORD) {
  return (await ok(server, null, 'POST', '/auth/login', { username, password })).token;
}

export async function adminToken(server) {
  return login(server, 'admin', ADMIN_PASSWORD);
}

export async function addUser(server, admin, username, roles) {
  await ok(server, admin, 'POST', '/users', { username, password: PASSWORD, roles }, 201);
}

/** A SKU, a bin A-01 holding 10 units of lot B1, and order `orderNo` for `qty` in a wave. */
export async function orderInWave(server, admin, orderNo, qty) {
  await stock(server, admin);
  await orderAndWave(server, admin, orderNo, qty);
}

/** SKU-1 and bins A-01 (10 units of lot B1) and A-02 (empty). */
export async function stock(server, admin) {
  await ok(server, admin, 'POST', '/skus', { code: SKU, name: 'Face serum 30 ml', barcodes: [EAN], unit_weight_grams: 95, ledger_item_no: '12' }, 201);
  for (const [code, seq] of [['A-01', 1], ['A-02', 2]]) {
    await ok(server, admin, 'POST', '/locations', { code, zone: 'A', walk_seq: seq, kind: 'storage' }, 201);
  }
  await ok(server, admin, 'POST', '/receipts', {
    receipt_no: 'R-1', customs_doc_no: 'QD29242026I000000001',
    lines: [{ sku: SKU, bin: 'A-01', batch: 'B1', expiry: '2028-06-30', qty: 10 }],
  }, 201);
}

/** Order `orderNo` (customs cop_no `COP-{orderNo}`) for `qty` units of SKU-1, in its own wave. */
export async function orderAndWave(server, admin, orderNo, qty) {
  const goods = (50 * qty).toFixed(2);
  const tax = (Math.round(50 * qty * 0.091 * 100) / 100).toFixed(2);
  const paid = (Number(goods) + 10 + Number(tax)).toFixed(2);
  await ok(server, admin, 'POST', '/orders', {
    order_no: orderNo, trade_mode: '1210', ebp_code: '3301964J31', ebc_code: '3301964J31', cop_no: `COP-${orderNo}`,
    buyer: { name: '张三', id_number: '11010519491231002X', phone: '13812345678' },
    consignee: { name: '张三', phone: '13912345678', address: '浙江省杭州市西湖区文三路 1 号' },
    lines: [{ sku: SKU, qty, unit_price: '50.00' }],
    goods_value: goods, freight: '10.00', discount: '0', tax, actual_paid: paid,
  }, 201);
  await ok(server, admin, 'POST', '/waves', { wave_no: `W-${orderNo}`, order_nos: [orderNo] }, 201);
}

/** Picks the order's one task into `tote` over the browser PDA endpoint, as `pickerToken`. */
let seeded = 0;

export async function pickAll(server, pickerToken, tote, qty) {
  // Each walk is its own device, so scan numbers never collide.
  seeded += 1;
  const device = `seed-${seeded}`;
  let seq = 0;
  let last;
  for (const code of ['start', tote, 'A-01', EAN, 'B1', String(qty)]) {
    seq += 1;
    last = await ok(server, pickerToken, 'POST', '/pick-tasks/scan', { device, seq, barcode: code });
  }
  assert.equal(last.next, 'done', JSON.stringify(last));
}

/** The box type BOX-S (120 g), put in place by the manager (`admin`). */
export async function boxS(server, admin) {
  await ok(server, admin, 'PUT', '/box-types', { code: 'BOX-S', name: 'Small carton', tare_grams: 120, active: true });
}

/**
 * Station P1's scale bridge on the server's broker: like a real scale it
 * sends what lies on its plate several times a second (`set(grams,
 * stable)` changes it), so the server keeps it online. `close()` stops it.
 */
export async function scaleBridge(server, station = 'P1') {
  const client = await mqttClient(server.mqtt, `ui-test-scale-${station}`);
  let reading = { grams: 0, stable: true };
  let running = true;
  const topic = `bondgate/SH01/scale/${station}/weight`;
  const send = () => client.publish(topic, JSON.stringify({ v: 1, grams: reading.grams, stable: reading.stable, ts: Date.now() }));
  const loop = (async () => {
    while (running) {
      send();
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    set(grams, stable) {
      reading = { grams, stable };
      send();
    },
    async close() {
      running = false;
      await loop;
      client.close();
    },
  };
}

/** Waits until the server counts station `station`'s scale online. */
export async function scaleOnline(server, admin, station = 'P1') {
  for (let i = 0; ; i += 1) {
    const s = (await ok(server, admin, 'GET', '/pack-stations')).find((x) => x.id === station);
    if (s?.scale?.online) return;
    assert.ok(i < 100, `scale of ${station} never online: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Packs the picked order in `tote` at station P1, whose scale is a bridge on
 * MQTT: readings are published (motion, then a stable 216 g = 95 g + 120 g
 * box) until the pack answers. The box type is the manager's (`admin`).
 */
export async function packAtP1(server, admin, packerToken, tote) {
  await boxS(server, admin);
  const scale = await scaleBridge(server);
  const wobble = setInterval(() => {
    scale.set(180, false);
    scale.set(216, true);
  }, 200);
  try {
    // The pack weighs at once if the scale is offline: wait for the bridge's readings to arrive.
    await scaleOnline(server, admin);
    return await ok(server, packerToken, 'POST', '/packages', { station: 'P1', code: tote, items: [EAN], box: 'BOX-S' }, 201);
  } finally {
    clearInterval(wobble);
    await scale.close();
  }
}

/**
 * A printer bridge for `station` on the server's broker: it takes every
 * label job and, unless `hold()` was called, reports it printed at once;
 * `release()` prints what it held and goes back to printing at once.
 * `jobs` lists the job ids received.
 */
export async function printerBridge(server, station = 'P1') {
  const client = await mqttClient(server.mqtt, `ui-test-printer-${station}`);
  const jobs = [];
  const held = [];
  let holding = false;
  const report = (job) => client.publish(`bondgate/SH01/printer/${station}/status`, JSON.stringify({ v: 1, report: 'printed', job }));
  client.publish(`bondgate/SH01/printer/${station}/status`, JSON.stringify({ v: 1, report: 'status', online: true, cover_open: false, paper_out: false, paper_near_end: false, error: false }));
  await client.subscribe(`bondgate/SH01/printer/${station}/job`, (payload) => {
    // The envelope: one JSON header line, then the label's bytes.
    const { job } = JSON.parse(payload.slice(0, payload.indexOf('\n')));
    if (!jobs.includes(job)) jobs.push(job);
    if (holding) held.push(job);
    else report(job);
  });
  return {
    jobs,
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const job of held.splice(0)) report(job);
    },
    close: () => client.close(),
  };
}

/**
 * The customs gateway's CEB622 receipt for `copNo` with `status` (800 =
 * released), signed with the test key the server was started with.
 */
export async function customsReceipt(server, token, copNo, status, returnTime) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>
<ceb:CEB622Message guid="UI-${copNo}-${status}" version="1.0" xmlns:ceb="http://www.chinaport.gov.cn/ceb">
  <ceb:InventoryReturn>
    <ceb:guid>UI-R-${copNo}-${status}</ceb:guid>
    <ceb:customsCode>2924</ceb:customsCode>
    <ceb:copNo>${copNo}</ceb:copNo>
    <ceb:preNo>B20261123000000001</ceb:preNo>
    <ceb:invtNo>29242026I000000001</ceb:invtNo>
    <ceb:returnStatus>${status}</ceb:returnStatus>
    <ceb:returnTime>${returnTime}</ceb:returnTime>
    <ceb:returnInfo>[Code:${status};Desc:ui test]</ceb:returnInfo>
  </ceb:InventoryReturn>
</ceb:CEB622Message>
`;
  const sig = createHmac('sha256', Buffer.from(CUSTOMS_KEY_SECRET, 'base64')).update(body).digest('base64');
  const res = await fetch(`${server.url}/api/v1/customs/receipts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/xml', 'x-bondgate-key-id': CUSTOMS_KEY_ID, 'x-bondgate-signature': sig },
    body,
  });
  const text = await res.text();
  assert.ok(res.ok, `customs receipt ${copNo} ${status}: ${res.status} ${text}`);
}

/**
 * A gate bridge for gate `gate` on the server's broker: every open command
 * is answered `open` (with its seq), then `closed` after its pulse. Returns
 * the commands it received and `close()`.
 */
export async function gateBridge(server, gate) {
  const client = await mqttClient(server.mqtt, `ui-test-gate-${gate}`);
  const commands = [];
  const state = `bondgate/SH01/gate/${gate}/state`;
  await client.subscribe(`bondgate/SH01/gate/${gate}/command`, (payload) => {
    const c = JSON.parse(payload);
    commands.push(c);
    if (c.cmd !== 'open' || c.expires_at <= Date.now()) return;
    client.publish(state, JSON.stringify({ v: 1, seq: c.seq, state: 'open' }));
    setTimeout(() => client.publish(state, JSON.stringify({ v: 1, seq: c.seq, state: 'closed' })), c.pulse_ms);
  });
  return { commands, close: () => client.close() };
}

// ---------------------------------------------------------------- MQTT 3.1.1
// Just enough of a client to be a scale bridge: CONNECT, PUBLISH at QoS 0.

function varint(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function str(s) {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

function packet(type, body) {
  return Buffer.concat([Buffer.from([type]), varint(body.length), body]);
}

/** Splits a byte stream into MQTT packets: calls `on(type, flags, body)` for each. */
function packetReader(on) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      let len = 0;
      let mul = 1;
      let i = 1;
      for (; i < buf.length && i < 5; i += 1) {
        len += (buf[i] & 0x7f) * mul;
        mul *= 128;
        if ((buf[i] & 0x80) === 0) break;
      }
      if (i >= buf.length || buf.length < i + 1 + len) return;
      on(buf[0] >> 4, buf[0] & 0x0f, buf.subarray(i + 1, i + 1 + len));
      buf = buf.subarray(i + 1 + len);
    }
  };
}

export async function mqttClient({ host, port }, clientId) {
  const socket = net.connect(port, host);
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let connected;
  const connack = new Promise((resolve, reject) => {
    connected = (body) => (body[1] === 0 ? resolve() : reject(new Error(`CONNACK ${body.toString('hex')}`)));
  });
  const handlers = new Map();
  let subacked = () => {};
  socket.on('data', packetReader((type, flags, body) => {
    if (type === 2) connected(body);
    else if (type === 9) subacked();
    else if (type === 3) {
      const tlen = body.readUInt16BE(0);
      const topic = body.subarray(2, 2 + tlen).toString('utf8');
      const qos = (flags >> 1) & 3;
      const payload = body.subarray(2 + tlen + (qos > 0 ? 2 : 0)).toString('utf8');
      handlers.get(topic)?.(payload);
    }
  }));
  socket.write(packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, 0, 60]), str(clientId)])));
  await connack;
  return {
    publish(topic, payload) {
      socket.write(packet(0x30, Buffer.concat([str(topic), Buffer.from(payload)])));
    },
    /** Subscribes at QoS 0; resolves once the broker acknowledged. */
    subscribe(topic, onMessage) {
      handlers.set(topic, onMessage);
      const acked = new Promise((resolve) => {
        subacked = resolve;
      });
      socket.write(packet(0x82, Buffer.concat([Buffer.from([0, 1]), str(topic), Buffer.from([0])])));
      return acked;
    },
    close() {
      socket.end(Buffer.from([0xe0, 0]));
    },
  };
}
