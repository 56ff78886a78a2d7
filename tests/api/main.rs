//! Black-box tests: each starts a real Wicket on a free port with throwaway dirs.

mod account;
mod cabinet;
mod cli;
mod edge;
mod faults;
mod forward_auth;
mod guessing;
mod helpers;
mod identity;
mod invites;
mod limits;
mod links;
mod login;
mod logout;
mod logs;
mod mail;
mod passkeys;
mod reasons;
mod redis;
mod register;
mod rules;
mod security;
mod sessions;
mod statics;
mod stores;
mod two_step;
