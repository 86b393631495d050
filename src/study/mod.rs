//! Study files (`servescope run STUDY.yaml`) and the servers a study starts.

pub mod servers;
