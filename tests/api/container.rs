//! The container image and the compose file, checked without Docker (CI has no engine): the
//! Dockerfile builds from the lock file, copies only what exists and everything the crate reads
//! at build time, and runs unprivileged with a liveness healthcheck in exec form (distroless has
//! no shell); `docker/compose.yaml`, parsed with PyYAML, runs three Tollgate nodes, PostgreSQL,
//! Redis and nginx, every one with a healthcheck and started only once what it needs is healthy,
//! the nodes trusting exactly their network as proxies, and every secret in a git-ignored env
//! file. None of this needs a database, so these tests run once rather than per backend.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tollgate::domain::client_address::TrustedProxies;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// One Dockerfile instruction: its keyword in upper case and its arguments, with continuation
/// lines joined and comment lines dropped (as Docker does, also inside a continuation).
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn instructions(dockerfile: &str) -> Vec<Instruction> {
    let mut found = Vec::new();
    let mut pending = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(start) => {
                pending.push_str(start);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let (keyword, args) = pending
                    .split_once(char::is_whitespace)
                    .unwrap_or((pending.as_str(), ""));
                found.push(Instruction {
                    keyword: keyword.to_uppercase(),
                    args: args.split_whitespace().collect::<Vec<_>>().join(" "),
                });
                pending.clear();
            }
        }
    }
    assert!(
        pending.is_empty(),
        "the Dockerfile ends inside a continued line"
    );
    found
}

/// The instructions from the last `FROM` on: the image that ships.
fn final_stage(all: &[Instruction]) -> &[Instruction] {
    let start = all
        .iter()
        .rposition(|i| i.keyword == "FROM")
        .expect("the Dockerfile has a FROM");
    &all[start..]
}

/// A `COPY`'s flags (`--from=…`, `--chown=…`), sources and destination.
struct Copy<'a> {
    flags: Vec<&'a str>,
    sources: Vec<&'a str>,
    destination: &'a str,
}

fn copy(instruction: &Instruction) -> Copy<'_> {
    let (flags, paths): (Vec<&str>, Vec<&str>) = instruction
        .args
        .split(' ')
        .partition(|word| word.starts_with("--"));
    let (destination, sources) = paths.split_last().expect("COPY names a destination");
    Copy {
        flags,
        sources: sources.to_vec(),
        destination,
    }
}

fn flag<'a>(copy: &Copy<'a>, name: &str) -> Option<&'a str> {
    copy.flags
        .iter()
        .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
}

/// An exec-form argument list (`["a", "b"]`).
fn exec_form(text: &str) -> Vec<String> {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{text} is not in exec form (distroless has no shell): {e}"))
}

/// `ENV A="x" B=y` as pairs.
fn env_pairs(args: &str) -> BTreeMap<String, String> {
    args.split(' ')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_string(), value.trim_matches('"').to_string()))
        .collect()
}

#[test]
fn the_image_builds_locked_and_runs_unprivileged_with_a_healthcheck() {
    let all = instructions(&read("docker/Dockerfile"));

    let builds: Vec<&Instruction> = all
        .iter()
        .filter(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .collect();
    assert!(!builds.is_empty(), "the image builds Tollgate");
    for build in builds {
        assert!(
            build.args.contains("cargo build --release --locked"),
            "every build is a release build from Cargo.lock: {}",
            build.args
        );
    }

    let shipped = final_stage(&all);
    let base = &shipped[0].args;
    assert!(
        base.starts_with("gcr.io/distroless/") || base == "scratch",
        "the image ships on distroless or scratch, not {base}"
    );
    assert!(
        shipped.iter().any(|i| i.keyword == "COPY"
            && flag(&copy(i), "--from").is_some()
            && copy(i)
                .sources
                .iter()
                .any(|s| s.ends_with("/release/tollgate"))),
        "the final stage takes the release binary from the build"
    );

    let user = shipped
        .iter()
        .rfind(|i| i.keyword == "USER")
        .map(|i| i.args.as_str())
        .expect("the final stage sets a USER");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(
        !uid.is_empty() && uid != "root" && uid != "0",
        "the process runs unprivileged, not as {user}"
    );

    // The SQLite file (and the billing dead-letter file beside it) live in /data, which that
    // user owns, and which is a volume.
    let env: BTreeMap<String, String> = shipped
        .iter()
        .filter(|i| i.keyword == "ENV")
        .flat_map(|i| env_pairs(&i.args))
        .collect();
    let database = env
        .get("DATABASE_URL")
        .expect("the image sets DATABASE_URL");
    assert!(database.starts_with("sqlite:///data/"), "{database}");
    let data_owner = shipped
        .iter()
        .filter(|i| i.keyword == "COPY")
        .map(copy)
        .find(|c| c.destination.trim_end_matches('/') == "/data")
        .and_then(|c| flag(&c, "--chown"))
        .expect("/data is made with an owner (COPY --chown=…)");
    assert_eq!(
        data_owner.split(':').next(),
        Some(uid),
        "the user owns /data"
    );
    assert!(
        shipped
            .iter()
            .any(|i| i.keyword == "VOLUME" && i.args.contains("/data")),
        "/data is a volume"
    );

    // Reachable from outside the container, on the port it exposes.
    let listen = env
        .get("TOLLGATE_LISTEN")
        .expect("the image sets TOLLGATE_LISTEN");
    let (host, port) = listen.rsplit_once(':').unwrap();
    assert_eq!(host, "0.0.0.0", "{listen}");
    assert!(
        shipped
            .iter()
            .any(|i| i.keyword == "EXPOSE" && i.args.split(' ').any(|p| p == port)),
        "the image exposes {port}"
    );

    // Liveness by the binary itself (no curl in the image), never a check that reads the
    // database or Redis, whose outage must restart nothing.
    let healthcheck = shipped
        .iter()
        .find(|i| i.keyword == "HEALTHCHECK")
        .expect("the image has a HEALTHCHECK");
    let (_, command) = healthcheck
        .args
        .split_once("CMD ")
        .expect("the HEALTHCHECK runs a command");
    let command = exec_form(command);
    assert!(command[0].ends_with("tollgate"), "{command:?}");
    assert_eq!(command[1..], ["healthcheck".to_string()], "{command:?}");

    let entrypoint = shipped
        .iter()
        .find(|i| i.keyword == "ENTRYPOINT")
        .expect("the image has an ENTRYPOINT");
    assert!(exec_form(&entrypoint.args)[0].ends_with("tollgate"));
}

/// Whether a path within the build context is left out by `.dockerignore`: the last pattern
/// that matches it or a folder above it decides (`!` puts it back).
fn docker_ignores(patterns: &[String], path: &str) -> bool {
    fn segment(pattern: &[u8], text: &[u8]) -> bool {
        match pattern.iter().position(|&b| b == b'*') {
            None => pattern == text,
            Some(star) => {
                let (head, tail) = (&pattern[..star], &pattern[star + 1..]);
                text.starts_with(head)
                    && (head.len()..=text.len()).any(|from| segment(tail, &text[from..]))
            }
        }
    }
    fn matches(pattern: &[&str], path: &[&str]) -> bool {
        match (pattern.split_first(), path.split_first()) {
            (None, _) => true, // a folder's pattern covers what is inside it
            (Some((&"**", rest)), _) => (0..=path.len()).any(|skip| matches(rest, &path[skip..])),
            (Some((head, rest)), Some((first, others))) => {
                segment(head.as_bytes(), first.as_bytes()) && matches(rest, others)
            }
            (Some(_), None) => false,
        }
    }
    let path: Vec<&str> = path.split('/').collect();
    let mut ignored = false;
    for pattern in patterns {
        let (keep, pattern) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern.as_str()),
        };
        let pattern: Vec<&str> = pattern.trim_matches('/').split('/').collect();
        if matches(&pattern, &path) {
            ignored = !keep;
        }
    }
    ignored
}

/// The files under a path, relative to the repository (the path itself for a file).
fn files_under(relative: &str) -> Vec<String> {
    let full = repo().join(relative);
    if full.is_file() {
        return vec![relative.to_string()];
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&full).unwrap() {
        let name = entry.unwrap().file_name();
        found.extend(files_under(&format!(
            "{relative}/{}",
            name.to_string_lossy()
        )));
    }
    found
}

/// `a/b/../c` → `a/c`, relative to the repository.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out.strip_prefix(repo())
        .map(Path::to_path_buf)
        .unwrap_or(out)
}

/// The files the crate embeds with `include_str!` / `include_bytes!`, relative to the repository.
fn embedded_files(dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            embedded_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for marker in ["include_str!(\"", "include_bytes!(\""] {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    let target = &rest[..rest.find('"').unwrap()];
                    let file = normalize(&path.parent().unwrap().join(target));
                    found.insert(file.to_string_lossy().into_owned());
                }
            }
        }
    }
}

#[test]
fn the_image_copies_what_the_build_reads_and_nothing_that_is_missing() {
    let all = instructions(&read("docker/Dockerfile"));
    let ignore: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();

    let copied: Vec<String> = all
        .iter()
        .filter(|i| i.keyword == "COPY")
        .map(copy)
        .filter(|c| flag(c, "--from").is_none())
        .flat_map(|c| {
            c.sources
                .into_iter()
                .map(|s| s.trim_end_matches('/').to_string())
        })
        .collect();
    assert!(!copied.is_empty());
    for source in &copied {
        assert!(
            repo().join(source).exists(),
            "the Dockerfile copies {source}, which is not in the repository"
        );
        for file in files_under(source) {
            assert!(
                !docker_ignores(&ignore, &file),
                "the Dockerfile copies {file}, which .dockerignore leaves out of the context"
            );
        }
    }

    // Everything read at build time: the files embedded with include_str!/include_bytes!
    // (migrations, the README as the operator's guide, the portal's scripts), askama's
    // templates and fluent's messages.
    let mut needed = BTreeSet::new();
    embedded_files(&repo().join("src"), &mut needed);
    assert!(needed.contains("README.md"), "{needed:?}");
    needed.insert("templates".into());
    needed.insert("i18n".into());
    needed.insert("Cargo.lock".into());
    for file in &needed {
        assert!(
            copied
                .iter()
                .any(|source| file == source || file.starts_with(&format!("{source}/"))),
            "the build reads {file}, which the Dockerfile does not copy"
        );
    }

    // The context leaves out what the build never reads, above all the build output.
    for heavy in [
        "target/release/tollgate",
        ".git/HEAD",
        "docs/screenshots/keys-en.png",
    ] {
        assert!(
            docker_ignores(&ignore, heavy),
            ".dockerignore keeps {heavy}"
        );
    }
}

/// `docker/compose.yaml` as JSON, read by PyYAML (anchors and merge keys resolved), or None
/// when no Python is configured.
fn compose() -> Option<Value> {
    let python = crate::sdk::python()?;
    let output = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml\nprint(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(repo().join("docker/compose.yaml"))
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "PyYAML cannot read docker/compose.yaml: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

/// A service's environment, written as a mapping or as a list of `NAME=value`.
fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let value = v.as_str().map_or_else(|| v.to_string(), String::from);
                (k.clone(), value)
            })
            .collect(),
        Value::Array(list) => list
            .iter()
            .filter_map(|v| v.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn names(value: &Value) -> BTreeSet<String> {
    match value {
        Value::Object(map) => map.keys().cloned().collect(),
        Value::Array(list) => list
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => BTreeSet::new(),
    }
}

fn env_files(service: &Value) -> Vec<String> {
    match &service["env_file"] {
        Value::String(file) => vec![file.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(|f| f.as_str().or_else(|| f["path"].as_str()).map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

struct Roles {
    nodes: Vec<String>,
    postgres: String,
    redis: String,
    proxy: String,
}

fn roles(services: &serde_json::Map<String, Value>) -> Roles {
    let image = |name: &str| {
        services[name]["image"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let with_image = |prefixes: &[&str]| -> Vec<String> {
        services
            .keys()
            .filter(|name| prefixes.iter().any(|p| image(name).starts_with(p)))
            .cloned()
            .collect()
    };
    let nodes: Vec<String> = services
        .iter()
        .filter(|(_, s)| s["build"]["dockerfile"] == "docker/Dockerfile")
        .map(|(name, _)| name.clone())
        .collect();
    let one = |prefixes: &[&str]| {
        let found = with_image(prefixes);
        assert_eq!(found.len(), 1, "one service from {prefixes:?}: {found:?}");
        found[0].clone()
    };
    Roles {
        nodes,
        postgres: one(&["postgres:"]),
        redis: one(&["redis:"]),
        proxy: one(&["nginx:", "caddy:"]),
    }
}

#[test]
fn the_compose_file_runs_three_nodes_on_postgres_and_redis_behind_a_proxy() {
    let Some(compose) = compose() else { return };
    let services = compose["services"].as_object().expect("services");
    let Roles {
        nodes,
        postgres,
        redis,
        proxy,
    } = roles(services);
    assert_eq!(nodes.len(), 3, "three Tollgate nodes: {nodes:?}");
    assert_eq!(
        services.len(),
        6,
        "nothing else runs: {:?}",
        services.keys()
    );
    for node in &nodes {
        assert_eq!(
            services[node]["build"]["context"], "..",
            "{node} builds this repository"
        );
        assert_eq!(
            services[node]["image"], services[&nodes[0]]["image"],
            "one image"
        );
    }

    // Every service says when it is healthy, and nothing starts before what it needs is.
    for (name, service) in services {
        let test = &service["healthcheck"]["test"];
        assert!(
            test.as_array()
                .is_some_and(|t| !t.is_empty() && t[0] != "NONE")
                && service["healthcheck"]["disable"] != true,
            "{name} has a healthcheck: {test}"
        );
        if let Some(needs) = service.get("depends_on") {
            let needs = needs
                .as_object()
                .unwrap_or_else(|| panic!("{name}'s depends_on names conditions: {needs}"));
            for (needed, how) in needs {
                assert_eq!(
                    how["condition"], "service_healthy",
                    "{name} waits for {needed} to be healthy"
                );
            }
        }
    }
    for node in &nodes {
        let needs = names(&services[node]["depends_on"]);
        assert!(
            needs.contains(&postgres) && needs.contains(&redis),
            "{node}: {needs:?}"
        );
        let test: Vec<&str> = services[node]["healthcheck"]["test"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            test.windows(2)
                .any(|w| w[0].ends_with("tollgate") && w[1] == "healthcheck"),
            "{node}'s healthcheck is `tollgate healthcheck`: {test:?}"
        );
    }
    let proxy_needs = names(&services[&proxy]["depends_on"]);
    for node in &nodes {
        assert!(proxy_needs.contains(node), "{proxy} waits for {node}");
    }

    // The nodes share the database and Redis, and believe forwarding headers from their
    // network only: the one the proxy is on, with the subnet the file fixes.
    for node in &nodes {
        let env = environment(&services[node]);
        assert!(
            env_files(&services[node])
                .iter()
                .any(|f| f == "tollgate.env"),
            "{node} reads DATABASE_URL from the env file"
        );
        let redis_url = &env["TOLLGATE_REDIS_URL"];
        assert_eq!(redis_url, &format!("redis://{redis}:6379"), "{node}");
        assert!(env.contains_key("TOLLGATE_REDIS_KEY_PREFIX"), "{node}");
        assert!(env["TOLLGATE_LISTEN"].starts_with("0.0.0.0:"), "{node}");

        let networks = names(&services[node]["networks"]);
        assert_eq!(networks.len(), 1, "{node} is on one network: {networks:?}");
        let network = networks.first().unwrap();
        assert!(names(&services[&proxy]["networks"]).contains(network));
        let subnets: Vec<&str> = compose["networks"][network]["ipam"]["config"]
            .as_array()
            .unwrap_or_else(|| panic!("the network {network} has a fixed subnet"))
            .iter()
            .filter_map(|c| c["subnet"].as_str())
            .collect();
        assert_eq!(subnets.len(), 1, "{subnets:?}");
        let trusted = &env["TOLLGATE_TRUSTED_PROXIES"];
        assert_eq!(
            trusted, subnets[0],
            "{node} trusts the proxies of its network"
        );
        let subnet: ipnet::IpNet = subnets[0].parse().unwrap();
        let parsed = TrustedProxies::parse(trusted).expect("the node starts with this list");
        assert!(parsed.contains(subnet.network()) && parsed.contains(subnet.broadcast()));
    }

    // The proxy's configuration is in the repository and balances over the three nodes.
    let mounted: Vec<&str> = services[&proxy]["volumes"]
        .as_array()
        .expect("the proxy mounts its configuration")
        .iter()
        .filter_map(|v| v.as_str()?.split(':').next())
        .filter(|source| source.starts_with("./"))
        .collect();
    assert_eq!(mounted.len(), 1, "{mounted:?}");
    let config = read(&format!("docker/{}", &mounted[0][2..]));
    for node in &nodes {
        let port = environment(&services[node])["TOLLGATE_LISTEN"]
            .rsplit_once(':')
            .unwrap()
            .1
            .to_string();
        assert!(
            config.contains(&format!("{node}:{port}")),
            "the proxy's configuration sends requests to {node}:{port}"
        );
    }
}

/// Every string in a parsed document.
fn strings<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => found.push(s),
        Value::Array(list) => list.iter().for_each(|v| strings(v, found)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            found.push(k);
            strings(v, found)
        }),
        _ => {}
    }
}

#[test]
fn the_compose_file_keeps_its_secrets_in_a_git_ignored_env_file() {
    let Some(compose) = compose() else { return };
    let services = compose["services"].as_object().expect("services");
    let Roles {
        nodes, postgres, ..
    } = roles(services);

    // The file the services read is git-ignored, and its example says what goes in it.
    assert!(
        read(".gitignore")
            .lines()
            .any(|l| l.trim() == "/docker/tollgate.env"),
        "docker/tollgate.env is git-ignored"
    );
    let example = read("docker/tollgate.env.example");
    let example: BTreeMap<&str, &str> = example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    assert!(example.contains_key("DATABASE_URL"), "{example:?}");
    let password = example["POSTGRES_PASSWORD"];
    assert!(
        example["DATABASE_URL"].contains(&format!(":{password}@")),
        "the example's two passwords agree"
    );
    for service in nodes.iter().chain([&postgres]) {
        assert_eq!(
            env_files(&services[service.as_str()]),
            ["tollgate.env"],
            "{service}"
        );
    }

    // No secret is written in the compose file itself.
    for (name, service) in services {
        for variable in environment(service).keys() {
            let upper = variable.to_uppercase();
            assert!(
                !["PASSWORD", "SECRET", "TOKEN"]
                    .iter()
                    .any(|s| upper.contains(s))
                    && upper != "DATABASE_URL",
                "{name} sets {variable} in compose.yaml; it belongs in the env file"
            );
        }
    }
    let mut all = Vec::new();
    strings(&compose, &mut all);
    for text in all {
        for (at, _) in text.match_indices("://") {
            let authority = text[at + 3..].split('/').next().unwrap_or_default();
            if let Some((credentials, _)) = authority.rsplit_once('@') {
                assert!(
                    !credentials.contains(':'),
                    "compose.yaml holds a password in {text}"
                );
            }
        }
    }
    assert!(
        !read("docker/compose.yaml").contains(password),
        "compose.yaml repeats the example's password"
    );
}
