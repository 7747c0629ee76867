//! Which flows of a scenario the server's API can run, decided before any load starts: a
//! flow that needs a capability the dialect lacks is refused (exit 2, naming the flow and
//! the capability), or, with `--skip-unsupported`, taken out of the mix and reported.

use crate::client::api::{Capability, ServerApi};
use crate::client::flows::Flow;
use crate::scenario::{FlowKind, Scenario};
use crate::Error;

/// A flow left out of the mix because the API lacks what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SkippedFlow {
    pub(crate) flow: FlowKind,
    pub(crate) missing: Vec<Capability>,
}

/// What `api` lacks for `scenario`: the population's needs, then each weighted flow's.
fn missing(scenario: &Scenario, api: &dyn ServerApi) -> (Vec<Capability>, Vec<SkippedFlow>) {
    let population =
        if scenario.population.devices_per_user > 1 && !api.has(Capability::MultiDevice) {
            vec![Capability::MultiDevice]
        } else {
            Vec::new()
        };
    let flows = FlowKind::ALL
        .into_iter()
        .filter(|k| scenario.weight(*k) > 0)
        .filter_map(|flow| {
            let missing: Vec<Capability> = Flow::of(flow)
                .needs
                .iter()
                .copied()
                .filter(|c| !api.has(*c))
                .collect();
            (!missing.is_empty()).then_some(SkippedFlow { flow, missing })
        })
        .collect();
    (population, flows)
}

/// Refuses a scenario `api` cannot run, or (`skip`) zeroes the weights of the flows it
/// cannot run and records them in `scenario.skipped_flows`.
pub(crate) fn fit(scenario: &mut Scenario, api: &dyn ServerApi, skip: bool) -> Result<(), Error> {
    let (population, flows) = missing(scenario, api);
    let dialect = api.dialect();
    if let Some(c) = population.first() {
        return Err(Error::BadInput(format!(
            "{}: population.devices_per_user = {} needs {c}, which the {dialect} API does not offer",
            scenario.path.display(),
            scenario.population.devices_per_user
        )));
    }
    if flows.is_empty() {
        return Ok(());
    }
    if !skip {
        let lines: Vec<String> = flows
            .iter()
            .map(|s| format!("  flow `{}` needs {}", s.flow.name(), names(&s.missing)))
            .collect();
        return Err(Error::BadInput(format!(
            "{}: the {dialect} API cannot run {} of the scenario's flows:\n{}\n\
             (leave them out with --skip-unsupported, or set their weight to 0 in [mix])",
            scenario.path.display(),
            flows.len(),
            lines.join("\n")
        )));
    }
    for s in &flows {
        scenario.weights[s.flow as usize] = 0;
    }
    if FlowKind::ALL.iter().all(|k| scenario.weight(*k) == 0) {
        return Err(Error::BadInput(format!(
            "{}: the {dialect} API can run none of the scenario's flows",
            scenario.path.display()
        )));
    }
    scenario.skipped_flows = flows;
    Ok(())
}

fn names(c: &[Capability]) -> String {
    c.iter().map(|c| c.name()).collect::<Vec<_>>().join(" and ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use async_trait::async_trait;
    use uuid::Uuid;

    use super::*;
    use crate::client::api::{
        ApiError, Bundle, Credential, Dialect, OneTimePrekeyBody, PushChannel, PushError,
        Registered, SendOutcome, SendRequest, SignedPrekeyBody, Uploaded,
    };
    use crate::client::keys::DeviceKeys;

    /// An API that offers only the core: only its capabilities are asked here.
    struct CoreOnly;

    #[async_trait]
    impl ServerApi for CoreOnly {
        fn dialect(&self) -> Dialect {
            Dialect::Reference
        }
        fn base(&self) -> &str {
            "http://core.invalid"
        }
        fn capabilities(&self) -> &'static [Capability] {
            &[]
        }
        async fn health(&self) -> Result<Option<bool>, ApiError> {
            unreachable!("capabilities only")
        }
        async fn register_user(&self, _: &mut DeviceKeys) -> Result<Registered, ApiError> {
            unreachable!("capabilities only")
        }
        async fn add_device(
            &self,
            _: &Credential,
            _: &mut DeviceKeys,
        ) -> Result<Registered, ApiError> {
            unreachable!("capabilities only")
        }
        async fn remove_device(&self, _: &Credential, _: u32) -> Result<(), ApiError> {
            unreachable!("capabilities only")
        }
        async fn upload_one_time(
            &self,
            _: &Credential,
            _: &[OneTimePrekeyBody],
        ) -> Result<Uploaded, ApiError> {
            unreachable!("capabilities only")
        }
        async fn rotate_signed(
            &self,
            _: &Credential,
            _: &SignedPrekeyBody,
        ) -> Result<(), ApiError> {
            unreachable!("capabilities only")
        }
        async fn prekey_count(&self, _: &Credential) -> Result<u64, ApiError> {
            unreachable!("capabilities only")
        }
        async fn bundles(&self, _: &Credential, _: Uuid) -> Result<Vec<Bundle>, ApiError> {
            unreachable!("capabilities only")
        }
        async fn device_bundle(
            &self,
            _: &Credential,
            _: Uuid,
            _: u32,
        ) -> Result<Vec<Bundle>, ApiError> {
            unreachable!("capabilities only")
        }
        async fn send(
            &self,
            _: &Credential,
            _: Uuid,
            _: &SendRequest,
        ) -> Result<SendOutcome, ApiError> {
            unreachable!("capabilities only")
        }
        async fn open_push(&self, _: &Credential) -> Result<Box<dyn PushChannel>, PushError> {
            unreachable!("capabilities only")
        }
    }

    fn scenario(mix: &str, devices_per_user: u32) -> Scenario {
        let text = format!(
            "model = \"open\"\nduration = \"10s\"\nwarmup = \"1s\"\n\
             [open]\nrate = 5\n\
             [population]\nusers = 4\ndevices_per_user = {devices_per_user}\none_time_prekeys = 10\nreplenish_threshold = 5\n\
             [mix]\n{mix}\n"
        );
        Scenario::parse(Path::new("s.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_flow_the_api_cannot_run_is_refused_naming_flow_and_capability() {
        let mut s = scenario("initiate = 3\nreplenish = 1\nrotate = 1", 1);
        let e = fit(&mut s, &CoreOnly, false).unwrap_err().to_string();
        assert!(
            e.contains("flow `replenish` needs prekey_count and prekey_upload"),
            "{e}"
        );
        assert!(
            e.contains("flow `rotate` needs signed_prekey_rotation"),
            "{e}"
        );
        assert!(!e.contains("initiate"), "{e}");
        assert_eq!(s.weight(FlowKind::Replenish), 1, "refusing changes nothing");
    }

    #[test]
    fn skipping_takes_the_flows_out_of_the_mix_and_records_them() {
        let mut s = scenario("initiate = 3\nreplenish = 1", 1);
        fit(&mut s, &CoreOnly, true).unwrap();
        assert_eq!(s.weight(FlowKind::Replenish), 0);
        assert_eq!(s.weight(FlowKind::Initiate), 3);
        assert_eq!(
            s.skipped_flows,
            vec![SkippedFlow {
                flow: FlowKind::Replenish,
                missing: vec![Capability::PrekeyCount, Capability::PrekeyUpload],
            }]
        );
        let mut only = scenario("rotate = 1", 1);
        let e = fit(&mut only, &CoreOnly, true).unwrap_err().to_string();
        assert!(e.contains("can run none"), "{e}");
    }

    #[test]
    fn several_devices_per_user_need_multi_device() {
        let mut s = scenario("initiate = 1", 2);
        let e = fit(&mut s, &CoreOnly, true).unwrap_err().to_string();
        assert!(e.contains("devices_per_user = 2 needs multi_device"), "{e}");
    }
}
