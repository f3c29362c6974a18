//! The outbound vehicle manifest over HTTP, on both backends: a parcel is
//! loaded only after it exited through the gate, onto one manifest only;
//! parcels come off an open manifest; closing needs the seal and a parcel;
//! a closed manifest refuses every change (and the database refuses it
//! too); the export lists each parcel's 清单 number, order, package and
//! gross grams with the totals, as JSON or as CSV with a BOM.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::gate::{bridge, gate_scan, gated_station, order_state, packed_and_released};
use crate::helpers::{Backend, TestApp};

/// Gets a packed, released parcel out through the gate the real way: a
/// guard's scan at gate G1 (driven by a simulated MQTT gate bridge) ending
/// in `result: "open"`, an open decision whose output the gate confirmed,
/// the parcel's stock shipped in that commit. The one place the manifest
/// tests depend on the gate flow.
async fn exit_parcel(app: &TestApp, code: &str) {
    let _bridge = bridge(app, "G1").await;
    let guard = app.user("gate-guard", "guard").await;
    let d = gate_scan(app, &guard, code).await;
    assert_eq!(
        (d["result"].as_str(), d["output"].as_str()),
        (Some("open"), Some("confirmed")),
        "{d}"
    );
}

async fn refused(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
    code: &str,
) {
    let (s, v) = app.call_as(Some(&app.token), method, path, body).await;
    assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{path}: {v}");
}

both_backends!(
    a_vehicle_manifest_loads_only_exited_parcels_and_freezes_when_closed,
    |b: Backend| async move {
        let Some((st, packer)) = gated_station(b).await else {
            return;
        };
        let app = &st.app;
        packed_and_released(&st, &packer).await;

        // Creation: the plate is parsed and normalised; idempotent on the number.
        for (body, code) in [
            (
                json!({"manifest_no": "VM-1", "plate": "ZJ12345"}),
                "invalid_plate",
            ),
            (
                json!({"manifest_no": "VM-1", "plate": "浙A1234O"}),
                "invalid_plate",
            ),
            (
                json!({"manifest_no": "VM 1", "plate": "浙A12345"}),
                "validation_failed",
            ),
            (
                json!({"manifest_no": "VM-1", "plate": "浙A12345", "seal": "x"}),
                "invalid_seal",
            ),
        ] {
            refused(
                app,
                Method::POST,
                "/api/v1/manifests",
                Some(body),
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
            )
            .await;
        }
        let (s, m) = app
            .post(
                "/api/v1/manifests",
                json!({"manifest_no": "vm-1", "plate": "浙A·12345"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{m}");
        assert_eq!(
            (
                m["manifest_no"].as_str(),
                m["plate"].as_str(),
                m["state"].as_str()
            ),
            (Some("VM-1"), Some("浙A12345"), Some("open")),
            "{m}"
        );
        let (s, _) = app
            .post(
                "/api/v1/manifests",
                json!({"manifest_no": "VM-1", "plate": "浙A12345"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        refused(
            app,
            Method::POST,
            "/api/v1/manifests",
            Some(json!({"manifest_no": "VM-1", "plate": "浙AD12345"})),
            StatusCode::CONFLICT,
            "already_exists",
        )
        .await;
        let (s, m2) = app
            .post(
                "/api/v1/manifests",
                json!({"manifest_no": "VM-2", "plate": "苏E12345D", "seal": "cs-0002"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{m2}");
        assert_eq!(m2["seal"], "CS-0002");

        // Not exited yet: refused, nothing loaded.
        let parcels = "/api/v1/manifests/VM-1/parcels";
        let parcel_1 = "/api/v1/manifests/VM-1/parcels/PKG-ORD-1";
        let close_1 = "/api/v1/manifests/VM-1/close";
        for (code, status, error) in [
            ("PKG-ORD-1", StatusCode::CONFLICT, "not_exited"),
            ("PKG-NOPE", StatusCode::NOT_FOUND, "not_found"),
        ] {
            let body = Some(json!({ "code": code }));
            refused(app, Method::POST, parcels, body, status, error).await;
        }
        assert_eq!(app.get("/api/v1/manifests/VM-1").await.1["parcel_count"], 0);

        exit_parcel(app, "PKG-ORD-1").await;
        assert_eq!(order_state(app).await, "shipped");
        // By waybill number; again changes nothing.
        for _ in 0..2 {
            let (s, m) = app.post(parcels, json!({"code": "BG0000000001"})).await;
            assert_eq!(s, StatusCode::OK, "{m}");
            assert_eq!(
                (m["parcel_count"].as_i64(), m["total_gross_grams"].as_i64()),
                (Some(1), Some(215)),
                "{m}"
            );
            let p = &m["parcels"][0];
            assert_eq!(
                (
                    p["package_no"].as_str(),
                    p["order_no"].as_str(),
                    p["invt_no"].as_str(),
                    p["gross_grams"].as_i64()
                ),
                (
                    Some("PKG-ORD-1"),
                    Some("ORD-1"),
                    Some("29242026I000000001"),
                    Some(215)
                ),
                "{m}"
            );
        }
        // One manifest per parcel.
        refused(
            app,
            Method::POST,
            "/api/v1/manifests/VM-2/parcels",
            Some(json!({"code": "PKG-ORD-1"})),
            StatusCode::CONFLICT,
            "on_other_manifest",
        )
        .await;
        // Off and on again.
        let (s, m) = app
            .call_as(Some(&app.token), Method::DELETE, parcel_1, None)
            .await;
        assert_eq!(
            (s, m["parcel_count"].as_i64()),
            (StatusCode::OK, Some(0)),
            "{m}"
        );
        refused(
            app,
            Method::DELETE,
            parcel_1,
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        // Closing needs the seal and a parcel.
        refused(
            app,
            Method::POST,
            "/api/v1/manifests/VM-2/close",
            Some(json!({})),
            StatusCode::CONFLICT,
            "empty_manifest",
        )
        .await;
        let (s, m) = app.post(parcels, json!({"code": "PKG-ORD-1"})).await;
        assert_eq!(s, StatusCode::OK, "{m}");
        refused(
            app,
            Method::POST,
            close_1,
            Some(json!({})),
            StatusCode::CONFLICT,
            "seal_required",
        )
        .await;
        let guard = app.user("gil", "guard").await;
        let (s, _) = app
            .call_as(
                Some(&guard),
                Method::POST,
                close_1,
                Some(json!({"seal": "CS-0001"})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, m) = app.post(close_1, json!({"seal": "cs-0001"})).await;
        assert_eq!(s, StatusCode::OK, "{m}");
        assert_eq!(
            (m["state"].as_str(), m["seal"].as_str()),
            (Some("closed"), Some("CS-0001")),
            "{m}"
        );

        // Closed: every change refused, over HTTP and in the database itself.
        for (method, path, body) in [
            (Method::POST, parcels, Some(json!({"code": "PKG-ORD-1"}))),
            (Method::DELETE, parcel_1, None),
            (Method::POST, close_1, Some(json!({"seal": "CS-0009"}))),
        ] {
            let (status, code) = (StatusCode::CONFLICT, "manifest_closed");
            refused(app, method, path, body, status, code).await;
        }
        for sql in [
            "DELETE FROM manifest_parcels",
            "UPDATE vehicle_manifests SET plate = '浙B00000' WHERE manifest_no = 'VM-1'",
            "DELETE FROM vehicle_manifests WHERE manifest_no = 'VM-1'",
        ] {
            assert!(app.db.raw_execute(sql).await.is_err(), "{sql} was allowed");
        }
        let (_, m) = app.get("/api/v1/manifests/VM-1").await;
        assert_eq!(
            (m["plate"].as_str(), m["parcel_count"].as_i64()),
            (Some("浙A12345"), Some(1)),
            "{m}"
        );

        let (s, list) = app.get("/api/v1/manifests?state=closed").await;
        assert_eq!(s, StatusCode::OK, "{list}");
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
        assert_eq!(
            (
                list[0]["manifest_no"].as_str(),
                list[0]["total_gross_grams"].as_i64()
            ),
            (Some("VM-1"), Some(215))
        );
        assert_eq!(
            app.get("/api/v1/manifests")
                .await
                .1
                .as_array()
                .map(Vec::len),
            Some(2)
        );

        // The export, as JSON and as CSV for Excel.
        let (s, e) = app.get("/api/v1/manifests/VM-1/export?format=json").await;
        assert_eq!(s, StatusCode::OK, "{e}");
        assert_eq!(
            e,
            json!({"manifest_no": "VM-1", "plate": "浙A12345", "seal": "CS-0001", "state": "closed",
                   "parcel_count": 1, "total_gross_grams": 215,
                   "parcels": [{"invt_no": "29242026I000000001", "order_no": "ORD-1", "package_no": "PKG-ORD-1",
                                "waybill_no": "BG0000000001", "gross_grams": 215}]})
        );
        let res = app
            .client
            .get(format!(
                "{}/api/v1/manifests/VM-1/export?format=csv",
                app.base
            ))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let bytes = res.bytes().await.unwrap();
        assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "no BOM");
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains("清单编号"), "{text}");
        assert_eq!(
            lines[1],
            "29242026I000000001,ORD-1,PKG-ORD-1,BG0000000001,215"
        );
        assert_eq!(lines[2], "合计 total,,1,,215");
        for (path, status, code) in [
            (
                "/api/v1/manifests/VM-1/export?format=xml",
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            ("/api/v1/manifests/VM-9", StatusCode::NOT_FOUND, "not_found"),
        ] {
            refused(app, Method::GET, path, None, status, code).await;
        }
        app.integrity_clean().await;
        st.finish().await;
    }
);
