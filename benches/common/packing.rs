//! The picked-and-packable workload `pack` and `gate` share: master data,
//! stock, orders of 1–3 lines walked into totes by a picker on the browser
//! PDA, a box type and a waybill range, all through the store's API, the same
//! on every database; and each order's pack record.

use anyhow::{bail, ensure, Context, Result};
use bondgate::crypto::PiiCipher;
use bondgate::domain::packing::Tolerance;
use bondgate::domain::{BatchNo, BinCode, DocumentNo, Money, Quantity, Role, SkuCode, TradeMode};
use bondgate::store::{
    Actor, BoxTypeInput, BuyerInput, ConsigneeInput, LocationInput, LocationKind, OrderInput,
    OrderLineInput, PackRecord, ReceiptInput, ReceiptLineInput, RecordStatus, ScanContext,
    ScanInput, SkuInput, Store, WaveInput, WaveOrigin, WaybillChoice, WaybillRange,
};
use chrono::{DateTime, NaiveDate, Utc};

use super::valid;

pub const SKUS: usize = 40;
pub const BINS: usize = 20;
pub const LINES_PER_ORDER_MAX: u64 = 3;
/// Orders per wave.
pub const WAVE_SIZE: usize = 50;
pub const STATION: &str = "P1";
pub const OUTBOUND: &str = "OUT-P1";
pub const BOX: &str = "BOX-M";
pub const BOX_TARE: i64 = 150;
pub const RANGE: &str = "bench";
/// The label's "printed at", fixed so that both databases store the same label.
pub const PRINTED_AT: &str = "2026-05-04 10:00";
/// What the scale reads above the expected weight (well inside 30 g / 3 %).
pub const SCALE_OFFSET_GRAMS: i64 = 7;
// ------------------------------------------------------------------ workload

pub fn bin_code(n: usize) -> String {
    format!("A-{n:02}-01-1")
}

pub fn sku_code(n: usize) -> String {
    format!("PACK-SKU-{n:03}")
}

/// A valid EAN-13 for SKU `n`.
pub fn ean(n: usize) -> String {
    let body = format!("690{:09}", 100_000 + n);
    let sum: u32 = body
        .chars()
        .enumerate()
        .map(|(i, c)| c.to_digit(10).expect("digits") * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

pub fn unit_grams(sku: usize) -> i64 {
    40 + (sku as i64 % 12) * 15
}

pub fn order_no(i: usize) -> String {
    format!("ORD-P{i:06}")
}

pub fn tote(i: usize) -> String {
    format!("TOTE-{i}")
}

/// splitmix64: the workload is pseudo-random but the same on every database.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Order `i`'s lines: (SKU index, units), 1–3 lines on different SKUs, 1 or 2
/// units each.
pub fn lines(i: usize) -> Vec<(usize, i64)> {
    let mut r = mix(i as u64);
    let mut next = || {
        r = mix(r);
        r
    };
    let n = 1 + (next() % LINES_PER_ORDER_MAX) as usize;
    let mut lines: Vec<(usize, i64)> = Vec::with_capacity(n);
    while lines.len() < n {
        let sku = (next() % SKUS as u64) as usize;
        if lines.iter().all(|(s, _)| *s != sku) {
            lines.push((sku, 1 + (next() % 2) as i64));
        }
    }
    lines
}

pub fn money(fen: i64) -> Money {
    valid(Money::from_fen(fen))
}

pub fn order(i: usize) -> OrderInput {
    let lines = lines(i);
    let price = |sku: usize| 5_990 + (sku as i64 % 10) * 1_000;
    let goods: i64 = lines.iter().map(|(s, q)| price(*s) * q).sum();
    let freight = if goods >= 19_900 { 0 } else { 1_000 };
    let tax = (goods * 91 + 500) / 1_000;
    let b = i % 500;
    OrderInput {
        order_no: valid(DocumentNo::parse(order_no(i))),
        trade_mode: TradeMode::BondedImport,
        ebp_code: "3301964J31".into(),
        ebc_code: "3301964J3X".into(),
        cop_no: valid(DocumentNo::parse(format!("COP-P{i:06}"))),
        buyer: BuyerInput {
            name: format!("买家{b}"),
            id_number: super::id_number(b),
            phone: format!("138{b:08}"),
        },
        consignee: ConsigneeInput {
            name: format!("收件人{b}"),
            phone: format!("139{b:08}"),
            address: format!(
                "浙江省杭州市西湖区文三路 {} 号 {} 室",
                b % 400 + 1,
                b % 900 + 101
            ),
        },
        lines: lines
            .iter()
            .map(|(s, q)| OrderLineInput {
                sku: valid(SkuCode::parse(sku_code(*s))),
                qty: valid(Quantity::new(*q)),
                unit_price: money(price(*s)),
            })
            .collect(),
        goods_value: money(goods),
        freight: money(freight),
        discount: money(0),
        tax: money(tax),
        actual_paid: money(goods + freight + tax),
    }
}

/// Order `i`'s pack as the pack station records it: the weight the scale
/// read a few grams over what the order should weigh, read at a fixed time
/// (so both databases store the same record).
pub fn record(i: usize) -> PackRecord {
    let goods: i64 = lines(i).iter().map(|(s, q)| unit_grams(*s) * q).sum();
    let tolerance = Tolerance::default();
    let base = DateTime::from_timestamp(1_777_888_000, 0).expect("a time");
    PackRecord {
        order_no: order_no(i),
        station: STATION.into(),
        box_code: BOX.into(),
        gross_grams: goods + BOX_TARE + SCALE_OFFSET_GRAMS,
        weighed_at: base + chrono::Duration::seconds(i as i64),
        tolerance_grams: tolerance.grams,
        tolerance_basis_points: tolerance.basis_points,
        waybill: WaybillChoice::Range(RANGE.into()),
        printed_at_text: PRINTED_AT.into(),
    }
}

pub fn packer() -> Actor {
    Actor {
        user_id: 0,
        username: "pat".into(),
        roles: vec![Role::Packer],
    }
}

/// Master data, stock, `orders` orders walked into their totes, the box type
/// and the waybill range: the same on every database, through the store.
pub async fn prepare(store: &Store, pii: &PiiCipher, orders: usize) -> Result<()> {
    let actor = Actor::system();
    for n in 0..BINS {
        let bin = LocationInput {
            code: valid(BinCode::parse(bin_code(n))),
            zone: "A".into(),
            walk_seq: n as i64,
            kind: LocationKind::Storage,
            active: true,
        };
        store.create_location(&actor, &bin).await?;
    }
    for n in 0..SKUS {
        let sku = SkuInput {
            code: valid(SkuCode::parse(sku_code(n))),
            name: format!("Pack serum {n}"),
            barcodes: vec![ean(n)],
            hs_code: Some("3304990099".into()),
            customs_item_record_no: None,
            ledger_item_no: Some(format!("{}", n + 1)),
            unit_weight_grams: unit_grams(n),
            shelf_life_days: Some(1_095),
            origin_country: Some("KOR".into()),
            record_status: RecordStatus::Active,
        };
        store.create_sku(&actor, &sku).await?;
    }
    // Every order could take 2 units of every SKU: no line runs short, and
    // each line is served by one reservation.
    let per_sku = 2 * orders as i64 + 10;
    let receipt = ReceiptInput {
        receipt_no: valid(DocumentNo::parse("RCV-PACK-1")),
        customs_doc_no: valid(DocumentNo::parse("QD-PACK-1")),
        supplier: Some("Bench Cosmetics Co.".into()),
        lines: (0..SKUS)
            .map(|n| ReceiptLineInput {
                sku: valid(SkuCode::parse(sku_code(n))),
                bin: valid(BinCode::parse(bin_code(n % BINS))),
                batch: valid(BatchNo::parse(format!("L{}", n % 7))),
                expiry: NaiveDate::from_ymd_opt(2028, 3, 1 + (n % 28) as u32),
                qty: per_sku,
                damaged_qty: 0,
            })
            .collect(),
    };
    store.receive(&actor, &receipt).await?;

    let platform = Actor {
        user_id: 0,
        username: "platform".into(),
        roles: vec![Role::Integration],
    };
    for i in 0..orders {
        let input = order(i);
        let ctx = bondgate::orders::prepare(&input, pii, Utc::now())?;
        store.create_order(&platform, &input, &ctx).await?;
    }
    let nos: Vec<String> = (0..orders).map(order_no).collect();
    for (w, chunk) in nos.chunks(WAVE_SIZE).enumerate() {
        let wave = WaveInput {
            wave_no: valid(DocumentNo::parse(format!("W-PACK-{w:04}"))),
            order_nos: Some(chunk.to_vec()),
            max_orders: None,
            picker: None,
        };
        store.create_wave(&actor, &wave, WaveOrigin::Manual).await?;
    }
    pick_all(store, orders).await?;

    store
        .upsert_box_type(
            &actor,
            &BoxTypeInput {
                code: BOX.into(),
                name: "Medium carton".into(),
                tare_grams: BOX_TARE,
                active: None,
            },
        )
        .await?;
    store
        .ensure_waybill_range(&WaybillRange {
            name: RANGE.into(),
            prefix: "BB".into(),
            first: 1,
            last: 9_999_999_999,
            width: 10,
        })
        .await?;
    Ok(())
}

/// The code in the last square brackets of a prompt: what to scan next.
pub fn bracketed(text: &str) -> Option<&str> {
    let end = text.rfind(']')?;
    let start = text[..end].rfind('[')?;
    Some(&text[start + 1..end])
}

/// A picker on the browser PDA page walks every order into its tote, as the
/// page does it: each order claimed in turn, its tote, then per task the bin,
/// the EAN, the lot and the quantity, taken from the prompts.
pub async fn pick_all(store: &Store, orders: usize) -> Result<()> {
    let user = store
        .create_user(&Actor::system(), "pia", "not-a-real-hash", &[Role::Picker])
        .await?;
    let picker = Actor {
        user_id: user.id,
        username: user.username.clone(),
        roles: user.roles.clone(),
    };
    let ctx = ScanContext {
        tote_prefix: "TOTE",
        user: Some(&picker),
    };
    let mut seq = 0u64;
    let mut code = "start".to_string();
    let budget = orders * 20 + 10;
    loop {
        seq += 1;
        ensure!(
            seq as usize <= budget,
            "picking did not finish in {budget} scans"
        );
        let input = ScanInput {
            device: "web-bench".into(),
            seq,
            barcode: code.clone(),
        };
        let answer = store.pda_scan(&input, &ctx).await?;
        ensure!(answer.ok, "scan {code} refused: {}", answer.text);
        let next = serde_json::to_value(answer.next)?;
        code = match next.as_str() {
            Some("done") => break,
            Some("tote") => {
                let no = answer
                    .text
                    .split_whitespace()
                    .find(|w| w.starts_with("ORD-P"))
                    .with_context(|| format!("no order in prompt {}", answer.text))?;
                let i: usize = no.trim_end_matches(':')["ORD-P".len()..].parse()?;
                tote(i)
            }
            Some("bin" | "item" | "lot" | "qty") => bracketed(&answer.text)
                .with_context(|| format!("nothing to scan in prompt {}", answer.text))?
                .to_string(),
            other => bail!("unexpected prompt {other:?}: {}", answer.text),
        };
    }
    // "No pick work" now: every task is picked, so every order is (a pack of
    // one that is not fails the run).
    Ok(())
}
