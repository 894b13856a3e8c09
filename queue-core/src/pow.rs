//! Hashcash-style proof of work before a join: find a `nonce` such that
//! `SHA-256(challenge ":" nonce)` starts with `bits` zero bits. A browser
//! spends about 2^bits hashes (a second or two at 16–18 bits); the edge
//! checks one hash.

use sha2::{Digest, Sha256};

/// The most an organizer may ask for: beyond this phones give up.
pub const MAX_BITS: u8 = 24;

pub fn leading_zero_bits(challenge: &str, nonce: &str) -> u32 {
    let digest = Sha256::new().chain_update(challenge).chain_update(":").chain_update(nonce).finalize();
    let mut bits = 0;
    for byte in digest {
        bits += byte.leading_zeros();
        if byte != 0 {
            break;
        }
    }
    bits
}

pub fn is_solved(challenge: &str, nonce: &str, bits: u8) -> bool {
    nonce.len() <= 32 && leading_zero_bits(challenge, nonce) >= u32::from(bits)
}

/// Finds a nonce by brute force, as the waiting-room page does in
/// JavaScript; used by tests and load generators.
pub fn solve(challenge: &str, bits: u8) -> String {
    (0u64..).map(|n| n.to_string()).find(|nonce| is_solved(challenge, nonce, bits)).expect("a nonce exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_solution_verifies_and_a_guess_does_not() {
        let nonce = solve("challenge-1", 12);
        assert!(is_solved("challenge-1", &nonce, 12));
        // Zero bits asks nothing.
        assert!(is_solved("anything", "", 0));
    }

    #[test]
    fn difficulty_counts_bits_not_bytes() {
        let nonce = solve("c", 9);
        assert!(leading_zero_bits("c", &nonce) >= 9);
        let unsolved = (0u64..).map(|n| n.to_string()).find(|n| leading_zero_bits("c", n) == 0).unwrap();
        assert!(!is_solved("c", &unsolved, 1));
    }

    #[test]
    fn absurd_nonces_are_refused_without_hashing_them() {
        assert!(!is_solved("c", &"0".repeat(33), 0));
    }
}
