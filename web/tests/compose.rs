//! docker-compose.yml, read as a deployment reviewer would: only the public
//! port is published, no credential has a default, and the services never
//! use MinIO's root credentials.

use std::path::PathBuf;

use yaml_rust2::{Yaml, YamlLoader};

fn compose() -> Yaml {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docker-compose.yml");
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn services(doc: &Yaml) -> Vec<(String, &Yaml)> {
    doc["services"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(name, service)| (name.as_str().unwrap().to_owned(), service))
        .collect()
}

fn env<'a>(service: &'a Yaml, name: &str) -> Option<&'a str> {
    service["environment"][name].as_str()
}

#[test]
fn only_the_public_port_is_published() {
    let doc = compose();
    for (name, service) in services(&doc) {
        let ports: Vec<&str> = service["ports"]
            .as_vec()
            .map(|p| p.iter().filter_map(Yaml::as_str).collect())
            .unwrap_or_default();
        if name == "web" {
            assert_eq!(ports, ["8080:8080"], "web");
        } else {
            assert!(ports.is_empty(), "{name} publishes {ports:?}");
        }
    }
    let web = &doc["services"]["web"];
    assert!(
        env(web, "DARKROOM_ADMIN_BIND").is_none(),
        "the admin listener must stay on the container's loopback"
    );
    assert!(
        !doc["services"]["minio"]["command"]
            .as_str()
            .unwrap()
            .contains("console-address"),
        "the MinIO console must not be exposed"
    );
}

#[test]
fn credentials_are_required_never_defaulted() {
    let doc = compose();
    for (name, service) in services(&doc) {
        let Some(vars) = service["environment"].as_hash() else {
            continue;
        };
        for (key, value) in vars {
            let (key, value) = (key.as_str().unwrap(), value.as_str().unwrap_or(""));
            let secret = [
                "PASSWORD",
                "SECRET",
                "TOKEN",
                "MINIO_ROOT_USER",
                "ACCESS_KEY",
            ]
            .iter()
            .any(|s| key.contains(s));
            // Unset, these turn off what they guard, never open it.
            if !secret || matches!(key, "DARKROOM_ADMIN_TOKEN" | "DARKROOM_SQS_ACCESS_KEYS") {
                continue;
            }
            assert!(
                value.contains(":?"),
                "{name}.{key} = {value:?} must come from the environment, required"
            );
        }
    }
    // Unset, the queue API and the SQS endpoint refuse everyone; never a
    // shipped value.
    assert_eq!(
        env(&doc["services"]["web"], "DARKROOM_ADMIN_TOKEN"),
        Some("${DARKROOM_ADMIN_TOKEN:-}")
    );
    assert_eq!(
        env(&doc["services"]["web"], "DARKROOM_SQS_ACCESS_KEYS"),
        Some("${DARKROOM_SQS_ACCESS_KEYS:-}")
    );
    assert!(
        env(&doc["services"]["web"], "DATABASE_URL")
            .unwrap()
            .contains("${POSTGRES_PASSWORD:?")
    );
}

#[test]
fn services_use_their_own_storage_user_not_minios_root() {
    let doc = compose();
    for name in ["web", "worker"] {
        let service = &doc["services"][name];
        let key = env(service, "AWS_ACCESS_KEY_ID").unwrap();
        let secret = env(service, "AWS_SECRET_ACCESS_KEY").unwrap();
        assert!(key.contains("DARKROOM_S3_ACCESS_KEY"), "{name}: {key}");
        assert!(
            secret.contains("DARKROOM_S3_SECRET_KEY"),
            "{name}: {secret}"
        );
    }
    let setup = doc["services"]["minio-setup"]["command"][0]
        .as_str()
        .unwrap();
    assert!(setup.contains("mc admin user add") && setup.contains("arn:aws:s3:::darkroom/*"));
}

#[test]
fn workers_use_a_postgres_role_the_web_server_grants_only_the_queue_tables() {
    let doc = compose();
    let worker = &doc["services"]["worker"];
    let url = env(worker, "DATABASE_URL").unwrap();
    assert!(
        url.starts_with("postgres://darkroom_worker:${DARKROOM_WORKER_DB_PASSWORD:?"),
        "{url}"
    );
    assert_eq!(env(worker, "DARKROOM_WORKER_SCHEMA"), Some("wait"));
    assert_eq!(
        env(&doc["services"]["web"], "DARKROOM_WORKER_DB_ROLE"),
        Some("darkroom_worker")
    );
    let setup = doc["services"]["postgres-setup"]["command"][0]
        .as_str()
        .unwrap();
    assert!(
        setup.contains("create role darkroom_worker login"),
        "{setup}"
    );
    for name in ["web", "worker"] {
        let after = &doc["services"][name]["depends_on"]["postgres-setup"]["condition"];
        assert_eq!(
            after.as_str(),
            Some("service_completed_successfully"),
            "{name}"
        );
    }
}
