//! `hotpatch-studio`: the desktop app. Everything lives in the library crate.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    hotpatch_studio::run();
}
