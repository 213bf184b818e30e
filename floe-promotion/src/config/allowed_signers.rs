//! The `allowed_signers` file of an environment that requires signed approval votes
//! (`approval: { signers: allowed_signers }`), in the format of git and `ssh-keygen -Y verify`:
//!
//! ```text
//! # principal  [options]                     key type     base64 key          [comment]
//! bob          namespaces="floe-approval"    ssh-ed25519  AAAAC3NzaC1lZDI1... bob@laptop
//! erin                                       ecdsa-sha2-nistp256 AAAAE2VjZHNh...
//! ```
//!
//! A vote's identity is the principal whose key made its signature, so floe is stricter than
//! `ssh-keygen` where a key must name one person: one principal per line, no wildcard
//! patterns, and a key listed for one principal only. Certificate authorities
//! (`cert-authority`) and validity periods (`valid-after`, `valid-before`) are refused as not
//! supported rather than ignored.

use std::path::{Path, PathBuf};

use ssh_key::{HashAlg, PublicKey, SshSig};

use crate::error::{Error, Excerpt, Result};
use crate::input::read_bounded;
use crate::model::{Actor, VOTE_NAMESPACE};

/// The largest `allowed_signers` file read.
const MAX_SIGNERS_BYTES: u64 = 1024 * 1024;

/// The signers of an environment's approval votes, read from an `allowed_signers` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedSigners {
    file: PathBuf,
    signers: Vec<AllowedSigner>,
}

/// One line of an `allowed_signers` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedSigner {
    /// The principal: the identity of the votes this key signs.
    pub principal: String,
    /// The namespaces the line allows (`namespaces="..."`), `None` for any.
    pub namespaces: Option<Vec<String>>,
    /// The line of the file (1-based).
    pub line: usize,
    key: PublicKey,
}

impl AllowedSigner {
    /// The key in OpenSSH form (`ssh-ed25519 AAAA...`), without a comment.
    pub fn key_openssh(&self) -> String {
        let mut key = self.key.clone();
        key.set_comment("");
        key.to_openssh().unwrap_or_default()
    }

    /// The key's fingerprint as `ssh-keygen -l` prints it (`SHA256:...`).
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// Whether the line allows signatures in `namespace`.
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        let Some(list) = &self.namespaces else {
            return true;
        };
        // As OpenSSH's match_pattern_list: a matching negated pattern refuses outright.
        let negated = |p: &&String| p.starts_with('!');
        !list
            .iter()
            .filter(negated)
            .any(|p| pattern_matches(&p[1..], namespace))
            && list
                .iter()
                .filter(|p| !negated(p))
                .any(|p| pattern_matches(p, namespace))
    }
}

impl AllowedSigners {
    /// Reads and parses `file`. A missing or unreadable file is [`Error::Io`] naming it; a
    /// malformed line is [`Error::Config`] naming the file, the line and column, and the field
    /// (`principals`, `options`, `namespaces`, `key`).
    pub fn load(file: &Path) -> Result<Self> {
        let bytes = read_bounded(file, MAX_SIGNERS_BYTES, "allowed_signers file")?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Config {
            file: Some(file.to_path_buf()),
            location: None,
            message: "the allowed_signers file is not UTF-8 text".into(),
        })?;
        Self::parse(&text, file)
    }

    /// Parses the text of an `allowed_signers` file; `file` names it in errors.
    ///
    /// ```
    /// use floe_promotion::config::AllowedSigners;
    /// let text = "bob namespaces=\"floe-approval\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti\n";
    /// let signers = AllowedSigners::parse(text, std::path::Path::new("allowed_signers"))?;
    /// assert_eq!(signers.signers()[0].principal, "bob");
    /// assert!(AllowedSigners::parse("bob ssh-ed25519 AAAA-not-base64\n", "f".as_ref()).is_err());
    /// # Ok::<(), floe_promotion::Error>(())
    /// ```
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let mut signers: Vec<AllowedSigner> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let signer = parse_line(raw, line).map_err(|(column, message)| Error::Config {
                file: Some(file.to_path_buf()),
                location: Some((line, column)),
                message,
            })?;
            if let Some(first) = signers
                .iter()
                .find(|s| s.key.key_data() == signer.key.key_data())
                && first.principal != signer.principal
            {
                return Err(Error::Config {
                    file: Some(file.to_path_buf()),
                    location: Some((line, 1)),
                    message: format!(
                        "key: this key is listed for {} at line {} already; a vote's identity is the principal of its key, so a key may belong to one principal only",
                        first.principal, first.line
                    ),
                });
            }
            signers.push(signer);
        }
        if signers.is_empty() {
            return Err(Error::Config {
                file: Some(file.to_path_buf()),
                location: None,
                message: "lists no signer: an environment that requires signed votes needs at least one `principal key-type base64-key` line".into(),
            });
        }
        Ok(AllowedSigners {
            file: file.to_path_buf(),
            signers,
        })
    }

    /// The file the signers were read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The signers, in file order.
    pub fn signers(&self) -> &[AllowedSigner] {
        &self.signers
    }

    /// Whether `principal` has a line in the file.
    pub fn has_principal(&self, principal: &str) -> bool {
        self.signers.iter().any(|s| s.principal == principal)
    }

    /// Checks an armored SSHSIG signature (`-----BEGIN SSH SIGNATURE-----`) over `message`
    /// as `ssh-keygen -Y verify -n floe-approval` would, and returns the line of the key that
    /// made it. Refused, with the reason: text that is not a signature, another namespace, a
    /// key the file does not list, a line whose `namespaces` leaves out `floe-approval`, and
    /// a signature over other bytes.
    pub fn verify(
        &self,
        message: &[u8],
        armored: &str,
    ) -> std::result::Result<&AllowedSigner, String> {
        let sig = SshSig::from_pem(armored.trim().as_bytes()).map_err(|e| {
            format!("the signature is not an SSH signature (-----BEGIN SSH SIGNATURE-----): {e}")
        })?;
        if sig.namespace() != VOTE_NAMESPACE {
            return Err(format!(
                "the signature was made for namespace {:?}, not {VOTE_NAMESPACE:?} (sign with `-n {VOTE_NAMESPACE}`)",
                Excerpt::new(sig.namespace()).to_string()
            ));
        }
        let file = Excerpt::path(&self.file);
        let Some(signer) = self
            .signers
            .iter()
            .find(|s| s.key.key_data() == sig.public_key())
        else {
            let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256);
            return Err(format!(
                "the signing key {fingerprint} is not listed in {file}"
            ));
        };
        if !signer.allows_namespace(VOTE_NAMESPACE) {
            return Err(format!(
                "{file} line {} allows {} to sign in namespaces {} only, not {VOTE_NAMESPACE:?}",
                signer.line,
                signer.principal,
                signer.namespaces.as_deref().unwrap_or_default().join(",")
            ));
        }
        signer
            .key
            .verify(VOTE_NAMESPACE, message, &sig)
            .map_err(|_| {
                format!(
                    "the signature of {} does not match this vote: it was made over another message (another request, digest, environment or decision)",
                    signer.principal
                )
            })?;
        Ok(signer)
    }
}

/// A `principals`, `options` or key error: the 1-based column and the message.
type LineError = (usize, String);

/// One whitespace-separated field of a line, with quotes kept, and its 1-based column.
fn fields(line: &str) -> std::result::Result<Vec<(usize, &str)>, LineError> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match (start, c) {
            (None, c) if c.is_whitespace() => {}
            (None, c) => {
                start = Some(i);
                quoted = c == '"';
            }
            (Some(_), '"') => quoted = !quoted,
            (Some(s), c) if c.is_whitespace() && !quoted => {
                out.push((s, &line[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        if quoted {
            return Err((column(line, s), "an unterminated quote".into()));
        }
        out.push((s, &line[s..]));
    }
    Ok(out.into_iter().map(|(s, f)| (column(line, s), f)).collect())
}

fn column(line: &str, byte: usize) -> usize {
    line[..byte].chars().count() + 1
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// Whether a field names a key type rather than options.
fn is_key_type(s: &str) -> bool {
    s.starts_with("ssh-") || s.starts_with("ecdsa-sha2-") || s.starts_with("sk-")
}

fn parse_line(line: &str, number: usize) -> std::result::Result<AllowedSigner, LineError> {
    let fields = fields(line)?;
    let (pcol, principals) = fields[0];
    let principals = unquote(principals);
    let list: Vec<&str> = principals.split(',').map(str::trim).collect();
    if list.len() != 1 {
        return Err((
            pcol,
            format!(
                "principals: {:?} names {} principals; a vote's identity is one principal, so write one line per principal",
                Excerpt::new(principals).to_string(),
                list.len()
            ),
        ));
    }
    let principal = list[0];
    if principal.is_empty() || principal.contains(['*', '?', '!']) {
        return Err((
            pcol,
            format!(
                "principals: {:?} is a pattern; a vote's identity must be one exact principal",
                Excerpt::new(principal).to_string()
            ),
        ));
    }
    if let Err(e) = Actor::new(principal) {
        return Err((pcol, format!("principals: {e}")));
    }
    let mut rest = &fields[1..];
    let mut namespaces = None;
    if let Some(&(ocol, options)) = rest.first()
        && !is_key_type(options)
    {
        namespaces = parse_options(options, ocol)?;
        rest = &rest[1..];
    }
    let Some(&(kcol, key_type)) = rest.first() else {
        return Err((
            column(line, line.trim_end().len()),
            "key: missing: expected a key type and a base64 key after the principal".into(),
        ));
    };
    let Some(&(_, blob)) = rest.get(1) else {
        return Err((
            kcol,
            format!(
                "key: {:?} has no base64 key after it",
                Excerpt::new(key_type).to_string()
            ),
        ));
    };
    let key = PublicKey::from_openssh(&format!("{key_type} {blob}")).map_err(|e| {
        (
            kcol,
            format!(
                "key: not a valid {} public key: {e}",
                Excerpt::new(key_type)
            ),
        )
    })?;
    Ok(AllowedSigner {
        principal: principal.to_string(),
        namespaces,
        line: number,
        key,
    })
}

/// The options field: `namespaces="a,b"` is understood; certificate authorities and validity
/// periods are refused as not supported, anything else as unknown.
fn parse_options(options: &str, col: usize) -> std::result::Result<Option<Vec<String>>, LineError> {
    let mut namespaces = None;
    for option in split_outside_quotes(options) {
        let (name, value) = match option.split_once('=') {
            Some((n, v)) => (n, Some(unquote(v))),
            None => (option, None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("namespaces", Some(v)) => {
                let list: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                if list.is_empty() {
                    return Err((col, "namespaces: lists no namespace".into()));
                }
                namespaces = Some(list);
            }
            ("namespaces", None) => {
                return Err((
                    col,
                    "namespaces: expected namespaces=\"floe-approval\"".into(),
                ));
            }
            ("cert-authority" | "valid-after" | "valid-before", _) => {
                return Err((
                    col,
                    format!(
                        "options: {name} is not supported yet for approval votes: list each signer's own key"
                    ),
                ));
            }
            _ => {
                return Err((
                    col,
                    format!(
                        "options: unknown option {:?} (expected namespaces=\"...\", or a key type such as ssh-ed25519)",
                        Excerpt::new(name).to_string()
                    ),
                ));
            }
        }
    }
    Ok(namespaces)
}

fn split_outside_quotes(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// OpenSSH's pattern matching of one namespace pattern: `*` any run, `?` one character.
fn pattern_matches(pattern: &str, value: &str) -> bool {
    fn glob(p: &[char], v: &[char]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some('*'), _) => glob(&p[1..], v) || (!v.is_empty() && glob(p, &v[1..])),
            (Some('?'), Some(_)) => glob(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &v[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    glob(&p, &v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti";

    fn parse(text: &str) -> Result<AllowedSigners> {
        AllowedSigners::parse(text, Path::new("signers"))
    }

    fn refusal(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn lines_with_and_without_options_parse() {
        let s = parse(&format!(
            "# who signs\n\nbob ssh-ed25519 {ED} bob@laptop\n\"erin\" namespaces=\"git,floe-*\" ssh-ed25519 {ED}\n"
        ));
        // The same key for two principals is refused, so check each alone.
        assert!(s.is_err());
        let s = parse(&format!("bob ssh-ed25519 {ED} bob@laptop\n")).unwrap();
        assert_eq!(s.signers()[0].line, 1);
        assert!(s.signers()[0].allows_namespace(VOTE_NAMESPACE));
        assert!(s.has_principal("bob"));
        assert!(s.signers()[0].fingerprint().starts_with("SHA256:"));
        assert_eq!(s.signers()[0].key_openssh(), format!("ssh-ed25519 {ED}"));
        let s = parse(&format!(
            "\"erin\" namespaces=\"git,floe-*\" ssh-ed25519 {ED}\n"
        ))
        .unwrap();
        assert_eq!(s.signers()[0].principal, "erin");
        assert!(s.signers()[0].allows_namespace(VOTE_NAMESPACE));
        let s = parse(&format!("erin namespaces=\"git\" ssh-ed25519 {ED}\n")).unwrap();
        assert!(!s.signers()[0].allows_namespace(VOTE_NAMESPACE));
    }

    #[test]
    fn malformed_lines_name_the_file_line_and_field() {
        for (text, want) in [
            (
                format!("bob,erin ssh-ed25519 {ED}"),
                "signers:1:1: principals:",
            ),
            (
                format!("b*b ssh-ed25519 {ED}"),
                "signers:1:1: principals: \"b*b\" is a pattern",
            ),
            (
                format!("\n\nbob cert-authority ssh-ed25519 {ED}"),
                "signers:3:5: options: cert-authority is not supported",
            ),
            (
                format!("bob frobnicate ssh-ed25519 {ED}"),
                "signers:1:5: options: unknown option",
            ),
            (
                "bob ssh-ed25519 AAAA".to_string(),
                "signers:1:5: key: not a valid",
            ),
            (
                "bob ssh-ed25519".to_string(),
                "signers:1:5: key: \"ssh-ed25519\" has no base64 key",
            ),
            ("bob".to_string(), "signers:1:4: key: missing"),
            (
                "bob namespaces=\"floe".to_string(),
                "signers:1:5: an unterminated quote",
            ),
            ("# nobody\n".to_string(), "signers: lists no signer"),
            (
                format!("bob ssh-ed25519 {ED}\nerin ssh-ed25519 {ED}"),
                "signers:2:1: key: this key is listed for bob at line 1",
            ),
        ] {
            let msg = refusal(&text);
            assert!(msg.starts_with(want), "{text:?}: {msg}");
        }
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let e = AllowedSigners::load(Path::new("/nonexistent/allowed_signers")).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert!(
            e.to_string().contains("/nonexistent/allowed_signers"),
            "{e}"
        );
    }

    #[test]
    fn namespace_patterns_follow_openssh() {
        assert!(pattern_matches("floe-approval", "floe-approval"));
        assert!(pattern_matches("floe-*", "floe-approval"));
        assert!(pattern_matches("floe-appro?al", "floe-approval"));
        assert!(!pattern_matches("git", "floe-approval"));
        let line = |ns: &str| {
            parse(&format!("bob namespaces=\"{ns}\" ssh-ed25519 {ED}"))
                .unwrap()
                .signers()[0]
                .allows_namespace(VOTE_NAMESPACE)
        };
        assert!(line("git,*"));
        assert!(!line("!floe-*,*"));
        assert!(!line("git,file"));
    }
}
