//! The proxy in front of real llama.cpp inference (filled in below).
