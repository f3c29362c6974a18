//! The demo warehouse: products, bins, stock, box types and the floor's
//! users, created through the API the way an administrator would.

use rand::Rng;
use serde_json::{json, Value};

use super::api::Api;

/// A product of the demo catalogue.
pub struct Product {
    pub sku: &'static str,
    pub name: &'static str,
    pub grams: i64,
    /// Retail price, CNY, two decimals.
    pub price: &'static str,
    pub barcode: String,
}

/// Cross-border bestsellers, with the weights a scale would show.
pub fn catalogue() -> Vec<Product> {
    let items: [(&str, &str, i64, &str); 8] = [
        ("SKU-SERUM-30", "精华液 Face serum 30 ml", 95, "129.00"),
        ("SKU-CREAM-50", "面霜 Night cream 50 ml", 160, "199.00"),
        ("SKU-MASK-10", "面膜 Sheet masks ×10", 280, "89.00"),
        ("SKU-MILK-800", "奶粉 Infant formula 800 g", 1010, "238.00"),
        ("SKU-VITC-60", "维生素C Vitamin C ×60", 120, "69.00"),
        ("SKU-FISH-90", "鱼油 Fish oil ×90", 210, "159.00"),
        ("SKU-LIP-01", "口红 Lipstick", 45, "179.00"),
        ("SKU-SUN-50", "防晒霜 Sunscreen 50 ml", 75, "99.00"),
    ];
    items
        .iter()
        .enumerate()
        .map(|(i, &(sku, name, grams, price))| Product {
            sku,
            name,
            grams,
            price,
            barcode: ean13(&format!("690123456{:03}", 780 + i)),
        })
        .collect()
}

/// Appends the EAN-13 check digit to 12 digits.
pub fn ean13(body: &str) -> String {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Storage bins, in walk order: two zones of six.
pub fn bins() -> Vec<String> {
    ["A", "B"]
        .iter()
        .flat_map(|z| (1..=6).map(move |n| format!("{z}-01-{n:02}")))
        .collect()
}

/// The floor's people: (username, password, roles, PDA badge).
pub const USERS: &[(&str, &str, &[&str], Option<&str>)] = &[
    ("manager", "demo-manager", &["manager"], None),
    ("picker1", "demo-picker", &["picker"], Some("BADGE-PICKER1")),
    ("picker2", "demo-picker", &["picker"], Some("BADGE-PICKER2")),
    ("packer", "demo-packer", &["packer"], None),
    ("guard", "demo-guard", &["guard"], None),
    ("gateway", "demo-gateway", &["integration"], None),
    ("platform", "demo-platform", &["integration"], None),
];

/// Box types: (code, name, tare grams).
pub const BOXES: &[(&str, &str, i64)] = &[
    ("BOX-S", "Small carton 小号纸箱", 80),
    ("BOX-M", "Medium carton 中号纸箱", 150),
];

/// Creates users, products, bins, stock and box types.
pub async fn seed(admin: &Api) -> anyhow::Result<()> {
    for (username, password, roles, badge) in USERS {
        admin
            .post(
                "/api/v1/users",
                json!({"username": username, "password": password, "roles": roles}),
            )
            .await?;
        if let Some(badge) = badge {
            admin
                .put(
                    &format!("/api/v1/users/{username}/badge"),
                    json!({"badge": badge}),
                )
                .await?;
        }
    }
    for (i, p) in catalogue().iter().enumerate() {
        admin
            .post(
                "/api/v1/skus",
                json!({"code": p.sku, "name": p.name, "unit_weight_grams": p.grams,
                       "barcodes": [p.barcode], "ledger_item_no": (i + 1).to_string(),
                       "shelf_life_days": 1095}),
            )
            .await?;
    }
    for (i, bin) in bins().iter().enumerate() {
        admin
            .post(
                "/api/v1/locations",
                json!({"code": bin, "zone": &bin[..1], "walk_seq": i + 1, "kind": "storage"}),
            )
            .await?;
    }
    for (code, zone, seq, kind) in [
        ("INSP-01", "I", 90, "inspection"),
        ("QUAR-01", "Q", 91, "quarantine"),
    ] {
        admin
            .post(
                "/api/v1/locations",
                json!({"code": code, "zone": zone, "walk_seq": seq, "kind": kind}),
            )
            .await?;
    }
    for (code, name, tare) in BOXES {
        admin
            .put(
                "/api/v1/box-types",
                json!({"code": code, "name": name, "tare_grams": tare}),
            )
            .await?;
    }
    let products = catalogue();
    let bins = bins();
    for (i, p) in products.iter().enumerate() {
        // Two lots per product in two bins: the earlier expiry is picked
        // first (FEFO), so the dashboard shows both.
        receive(admin, p, &bins[i % bins.len()], "LOT-A", "2027-09-30", 1).await?;
        receive(
            admin,
            p,
            &bins[(i + 6) % bins.len()],
            "LOT-B",
            "2028-06-30",
            2,
        )
        .await?;
    }
    Ok(())
}

/// Receives 300 units of `p` into `bin` (and 2 damaged), under its own receipt.
pub async fn receive(
    admin: &Api,
    p: &Product,
    bin: &str,
    batch: &str,
    expiry: &str,
    n: u32,
) -> anyhow::Result<Value> {
    let receipt_no = format!("RCV-{}-{n}", &p.sku[4..]);
    admin
        .post(
            "/api/v1/receipts",
            json!({"receipt_no": receipt_no, "customs_doc_no": format!("QD29242026I{:09}", n),
                   "supplier": "Demo Trading (HK) Ltd",
                   "lines": [{"sku": p.sku, "bin": bin, "batch": batch, "expiry": expiry,
                              "qty": 300, "damaged_qty": 2}]}),
        )
        .await
}

const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
const GIVEN: &[&str] = &["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "杰", "婷"];
const ADDRESSES: &[&str] = &[
    "浙江省杭州市西湖区文三路 90 号",
    "上海市浦东新区张江路 368 号",
    "广东省深圳市南山区科技园路 1 号",
    "北京市朝阳区建国路 88 号",
    "四川省成都市武侯区天府大道 1700 号",
];
/// Region codes of the buyers' ID numbers (GB/T 2260).
const REGIONS: &[&str] = &["110105", "310115", "440305", "330106", "510107"];

/// A valid GB 11643 ID number: region, birth date, serial, check character.
pub fn id_number(rng: &mut impl Rng) -> String {
    let region = REGIONS[rng.gen_range(0..REGIONS.len())];
    let body = format!(
        "{region}{}{:02}{:02}{:03}",
        rng.gen_range(1970..2004),
        rng.gen_range(1..=12),
        rng.gen_range(1..=28),
        rng.gen_range(1..999)
    );
    let check = crate_idcard_check(&body);
    format!("{body}{check}")
}

fn crate_idcard_check(body: &str) -> char {
    bondgate::domain::idcard::check_char(body).expect("17 digits have a check character")
}

/// A platform order of 1–3 random lines (amounts that add up exactly: goods
/// + freight − discount + tax, tax 9.1 % as cross-border e-commerce pays).
pub fn order(order_no: &str, rng: &mut impl Rng) -> Value {
    use rust_decimal::Decimal;
    let products = catalogue();
    let n = rng.gen_range(1..=3);
    let mut picked: Vec<usize> = Vec::new();
    while picked.len() < n {
        let i = rng.gen_range(0..products.len());
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    let lines: Vec<(&Product, i64)> = picked
        .iter()
        .map(|&i| (&products[i], if rng.gen_ratio(1, 4) { 2 } else { 1 }))
        .collect();
    let goods: Decimal = lines
        .iter()
        .map(|(p, q)| {
            p.price.parse::<Decimal>().expect("catalogue prices parse") * Decimal::from(*q)
        })
        .sum();
    let freight = Decimal::from(10);
    let tax = (goods * Decimal::new(91, 3)).round_dp(2);
    let paid = goods + freight + tax;
    let name = format!(
        "{}{}",
        SURNAMES[rng.gen_range(0..SURNAMES.len())],
        GIVEN[rng.gen_range(0..GIVEN.len())]
    );
    let phone = format!(
        "13{}{:08}",
        rng.gen_range(0..10),
        rng.gen_range(0..100_000_000)
    );
    json!({
        "order_no": order_no, "trade_mode": "1210", "ebp_code": "3301964J31", "ebc_code": "3301964J31",
        "cop_no": format!("COP-{order_no}"),
        "buyer": {"name": name, "id_number": id_number(rng), "phone": phone},
        "consignee": {"name": name, "phone": phone, "address": ADDRESSES[rng.gen_range(0..ADDRESSES.len())]},
        "lines": lines.iter().map(|(p, q)| json!({"sku": p.sku, "qty": q, "unit_price": p.price})).collect::<Vec<_>>(),
        "goods_value": goods.to_string(), "freight": freight.to_string(), "discount": "0",
        "tax": tax.to_string(), "actual_paid": paid.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ean13_check_digits_are_right() {
        // A published example: 400638133393 → 1.
        assert_eq!(ean13("400638133393"), "4006381333931");
        assert_eq!(ean13("690123456789"), "6901234567892");
    }

    #[test]
    fn generated_id_numbers_pass_the_domain_check() {
        let mut rng = rand::thread_rng();
        for _ in 0..200 {
            let id = id_number(&mut rng);
            assert!(
                bondgate::domain::idcard::IdNumber::parse(&id).is_ok(),
                "{id}"
            );
        }
    }
}
