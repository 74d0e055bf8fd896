//! The `omni` Terraform provider.
