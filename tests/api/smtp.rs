//! A real SMTP server for the tests, on 127.0.0.1: it speaks enough SMTP for lettre,
//! captures what it receives, and can answer what a test scripts (4xx, 5xx, silence).
//! Every message it accepts is checked as a standard MIME message
//! (`mail_check::assert_standard_mail`) before a test can see it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message as it arrived: envelope and raw data.
#[derive(Debug, Clone)]
pub struct Captured {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
}

/// How the server behaves.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Answers every step normally; the reply to the end of DATA is taken from the
    /// script (e.g. "451 4.3.0 try later"), then "250 OK" once the script is empty.
    Scripted(VecDeque<String>),
    /// Accepts connections and never says a word.
    Silent,
}

#[derive(Clone)]
pub struct SmtpServer {
    pub address: SocketAddr,
    captured: Arc<Mutex<Vec<Captured>>>,
    /// How many of the captured messages passed the standard check already.
    checked: Arc<Mutex<usize>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl SmtpServer {
    pub async fn start(behaviour: Behaviour) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), behaviour).await
    }

    /// On a given address: a test can reserve a port, keep it closed, and start the
    /// server there later.
    pub async fn start_on(address: SocketAddr, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let captured = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(behaviour));
        let sink = Arc::clone(&captured);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let sink = Arc::clone(&sink);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let _ = converse(stream, sink, script).await;
                });
            }
        });
        Self {
            address,
            captured,
            checked: Arc::new(Mutex::new(0)),
            task: Arc::new(task),
        }
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// What arrived so far. Panics if any message is not a well-formed MIME message.
    pub fn messages(&self) -> Vec<Captured> {
        let messages = self.captured.lock().unwrap().clone();
        let mut checked = self.checked.lock().unwrap();
        for (index, message) in messages.iter().enumerate().skip(*checked) {
            // The server does not know the configuration: the Message-ID must at least
            // be of the From's domain (tests check From against `mail.from`).
            crate::mail_check::assert_standard_mail(
                &message.data,
                None,
                &format!("message {index} received by the test SMTP server"),
            );
            *checked = index + 1;
        }
        messages
    }

    /// Waits until `count` messages arrived, at most `limit`.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Captured> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let arrived = self.captured.lock().unwrap().len();
            if arrived >= count || tokio::time::Instant::now() >= deadline {
                return self.messages();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

/// A free port on loopback with nothing listening on it.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn converse(
    stream: TcpStream,
    sink: Arc<Mutex<Vec<Captured>>>,
    script: Arc<Mutex<Behaviour>>,
) -> std::io::Result<()> {
    if matches!(*script.lock().unwrap(), Behaviour::Silent) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return Ok(());
    }
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 test.invalid ESMTP\r\n").await?;
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => "250-test.invalid\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING".into(),
            "HELO" => "250 test.invalid".into(),
            "MAIL" => {
                mail_from = command[10..].to_owned();
                rcpt_to.clear();
                "250 2.1.0 OK".into()
            }
            "RCPT" => {
                rcpt_to.push(command[8..].to_owned());
                "250 2.1.5 OK".into()
            }
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut data = Vec::new();
                loop {
                    let mut data_line = Vec::new();
                    if lines.read_until(b'\n', &mut data_line).await? == 0 {
                        return Ok(());
                    }
                    if data_line == b".\r\n" {
                        break;
                    }
                    // Undo dot-stuffing.
                    let unstuffed = data_line.strip_prefix(b".").unwrap_or(&data_line);
                    data.extend_from_slice(unstuffed);
                }
                let reply = match &mut *script.lock().unwrap() {
                    Behaviour::Scripted(replies) => replies.pop_front(),
                    Behaviour::Silent => None,
                }
                .unwrap_or_else(|| "250 2.0.0 queued".into());
                if reply.starts_with('2') {
                    sink.lock().unwrap().push(Captured {
                        mail_from: mail_from.clone(),
                        rcpt_to: rcpt_to.clone(),
                        data,
                    });
                }
                reply
            }
            "RSET" => {
                rcpt_to.clear();
                "250 OK".into()
            }
            "NOOP" => "250 OK".into(),
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 command not recognised".into(),
        };
        write.write_all(reply.as_bytes()).await?;
        write.write_all(b"\r\n").await?;
    }
}
