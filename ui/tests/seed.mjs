// Drives the server's HTTP API the way the integration and the office do,
// to put in place what a screen test needs: users, stock, an order, a wave,
// a picked and packed parcel. Never writes to the database directly.
import assert from 'node:assert/strict';
import net from 'node:net';
import { ADMIN_PASSWORD } from './server.mjs';

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
  await ok(server, admin, 'POST', '/skus', { code: SKU, name: 'Face serum 30 ml', barcodes: [EAN], unit_weight_grams: 95, ledger_item_no: '12' }, 201);
  for (const [code, seq] of [['A-01', 1], ['A-02', 2]]) {
    await ok(server, admin, 'POST', '/locations', { code, zone: 'A', walk_seq: seq, kind: 'storage' }, 201);
  }
  await ok(server, admin, 'POST', '/receipts', {
    receipt_no: 'R-1', customs_doc_no: 'QD29242026I000000001',
    lines: [{ sku: SKU, bin: 'A-01', batch: 'B1', expiry: '2028-06-30', qty: 10 }],
  }, 201);
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
export async function pickAll(server, pickerToken, tote, qty) {
  let seq = 0;
  let last;
  for (const code of ['start', tote, 'A-01', EAN, 'B1', String(qty)]) {
    seq += 1;
    last = await ok(server, pickerToken, 'POST', '/pick-tasks/scan', { device: 'seed', seq, barcode: code });
  }
  assert.equal(last.next, 'done', JSON.stringify(last));
}

/**
 * Packs the picked order in `tote` at station P1, whose scale is a bridge on
 * MQTT: readings are published (motion, then a stable 216 g = 95 g + 120 g
 * box) until the pack answers. The box type is the manager's (`admin`).
 */
export async function packAtP1(server, admin, packerToken, tote) {
  await ok(server, admin, 'PUT', '/box-types', { code: 'BOX-S', name: 'Small carton', tare_grams: 120 });
  const scale = await mqttClient(server.mqtt, 'ui-test-scale-P1');
  let packing = true;
  const feed = (async () => {
    while (packing) {
      scale.publish('bondgate/SH01/scale/P1/weight', JSON.stringify({ v: 1, grams: 180, stable: false, ts: Date.now() }));
      scale.publish('bondgate/SH01/scale/P1/weight', JSON.stringify({ v: 1, grams: 216, stable: true, ts: Date.now() }));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  try {
    return await ok(server, packerToken, 'POST', '/packages', { station: 'P1', code: tote, items: [EAN], box: 'BOX-S' }, 201);
  } finally {
    packing = false;
    await feed;
    scale.close();
  }
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

export async function mqttClient({ host, port }, clientId) {
  const socket = net.connect(port, host);
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const connack = new Promise((resolve, reject) => {
    socket.once('data', (d) => (d[0] === 0x20 && d[3] === 0 ? resolve() : reject(new Error(`CONNACK ${d.toString('hex')}`))));
  });
  socket.write(packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, 0, 60]), str(clientId)])));
  await connack;
  return {
    publish(topic, payload) {
      socket.write(packet(0x30, Buffer.concat([str(topic), Buffer.from(payload)])));
    },
    close() {
      socket.end(Buffer.from([0xe0, 0]));
    },
  };
}
