//! Container ids and generated names (`adjective_surname`, as dockerd does).

use std::io::Read;

const LEFT: &[&str] = &[
    "admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome", "blissful",
    "bold", "boring", "brave", "busy", "charming", "clever", "compassionate", "competent",
    "confident", "cool", "cranky", "crazy", "dazzling", "determined", "distracted", "dreamy",
    "eager", "ecstatic", "elastic", "elated", "elegant", "eloquent", "epic", "exciting",
    "fervent", "festive", "flamboyant", "focused", "friendly", "frosty", "funny", "gallant",
    "gifted", "goofy", "gracious", "great", "happy", "hardcore", "heuristic", "hopeful",
    "hungry", "infallible", "inspiring", "intelligent", "interesting", "jolly", "jovial", "keen",
    "kind", "laughing", "loving", "lucid", "magical", "modest", "musing", "mystifying", "naughty",
    "nervous", "nice", "nifty", "nostalgic", "objective", "optimistic", "peaceful", "pedantic",
    "pensive", "practical", "priceless", "quirky", "quizzical", "recursing", "relaxed",
    "reverent", "romantic", "sad", "serene", "sharp", "silly", "sleepy", "stoic", "strange",
    "stupefied", "suspicious", "sweet", "tender", "thirsty", "trusting", "unruffled", "upbeat",
    "vibrant", "vigilant", "vigorous", "wizardly", "wonderful", "xenodochial", "youthful",
    "zealous", "zen",
];

const RIGHT: &[&str] = &[
    "agnesi", "albattani", "allen", "almeida", "archimedes", "ardinghelli", "aryabhata",
    "austin", "babbage", "banach", "bardeen", "bartik", "bassi", "bell", "bhabha", "blackwell",
    "bohr", "booth", "borg", "bose", "boyd", "brahmagupta", "brattain", "brown", "carson",
    "cerf", "chandrasekhar", "clarke", "colden", "cori", "cray", "curie", "darwin", "davinci",
    "dijkstra", "dubinsky", "easley", "edison", "einstein", "elion", "engelbart", "euclid",
    "euler", "fermat", "fermi", "feynman", "franklin", "galileo", "gates", "goldberg",
    "goldstine", "goldwasser", "golick", "goodall", "hamilton", "hawking", "heisenberg",
    "hermann", "hodgkin", "hofstadter", "hopper", "hugle", "hypatia", "jackson", "jang",
    "jennings", "jepsen", "johnson", "joliot", "jones", "kalam", "kapitsa", "keller", "kepler",
    "khorana", "kilby", "kirch", "knuth", "lalande", "lamarr", "lamport", "leakey", "leavitt",
    "lederberg", "lehmann", "lewin", "lichterman", "liskov", "lovelace", "lumiere", "mahavira",
    "margulis", "matsumoto", "maxwell", "mayer", "mccarthy", "mcclintock", "mclean", "meitner",
    "mendel", "merkle", "mirzakhani", "montalcini", "moore", "morse", "murdock", "napier",
    "nash", "neumann", "newton", "nightingale", "nobel", "noether", "northcutt", "noyce",
    "panini", "pare", "pascal", "pasteur", "payne", "perlman", "pike", "poincare", "poitras",
    "ptolemy", "raman", "ramanujan", "ride", "ritchie", "robinson", "roentgen", "rosalind",
    "rubin", "saha", "sammet", "shannon", "shaw", "shirley", "shockley", "sinoussi", "snyder",
    "spence", "stonebraker", "sutherland", "swanson", "swartz", "swirles", "tesla", "thompson",
    "torvalds", "turing", "varahamihira", "visvesvaraya", "volhard", "wescoff", "wiles",
    "williams", "wilson", "wing", "wozniak", "wright", "wu", "yalow", "yonath",
];

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if getrandom::getrandom(&mut b).is_err() {
        // Fall back to /dev/urandom; both failing means the system is unusable.
        let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    }
    b
}

/// A new 64-hex container id; never all digits, so it cannot be mistaken for a number.
pub fn new_id() -> String {
    loop {
        let id = hex::encode(random_bytes::<32>());
        if id.bytes().any(|c| c.is_ascii_alphabetic()) {
            return id;
        }
    }
}

/// A random `adjective_surname` name.
pub fn random_name() -> String {
    let b = random_bytes::<4>();
    let l = u16::from_le_bytes([b[0], b[1]]) as usize % LEFT.len();
    let r = u16::from_le_bytes([b[2], b[3]]) as usize % RIGHT.len();
    format!("{}_{}", LEFT[l], RIGHT[r])
}

/// dockerd's container name rule: `/?[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    n.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ids_and_names() {
        let a = new_id();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_id());
        assert!(valid_name(&random_name()));
        assert!(valid_name("web_1") && valid_name("/x1") && valid_name("a.b-c"));
        assert!(!valid_name("x") && !valid_name("-x") && !valid_name("a b") && !valid_name(""));
    }
}
