//! `terraform-provider-omni`: started by Terraform/OpenTofu, never by hand
//! (run it with `--debug` to attach Terraform through TF_REATTACH_PROVIDERS).

fn main() -> std::process::ExitCode {
    terraform_provider_omni::serve()
}
