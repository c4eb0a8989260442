//! The static-file baseline: Debian's nginx serving a directory (the live stream's recording) on
//! a free loopback port, one process (`master_process off`), so its CPU is one PID's; access log
//! off and keep-alive unbounded, as a CDN origin would run it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub struct Nginx {
    pub base: String,
    pub pid: u32,
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    /// Serves `root` at `http://127.0.0.1:PORT/`.
    pub fn start(root: &Path) -> Result<Nginx> {
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| Path::new(p).exists());
        let bin = bin.context("nginx not found (apt-get install nginx-light; scripts/setup.sh does)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("confab-nginx-{port}"));
        std::fs::create_dir_all(&dir)?;
        let d = dir.display();
        let conf = format!(
            "master_process off; daemon off; worker_processes 1; worker_rlimit_nofile 65536;\n\
             error_log {d}/error.log warn; pid {d}/nginx.pid;\n\
             events {{ worker_connections 32768; }}\n\
             http {{\n  access_log off; sendfile on; tcp_nopush on; tcp_nodelay on;\n\
               keepalive_requests 1000000; keepalive_timeout 120;\n\
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
               uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               types {{ application/vnd.apple.mpegurl m3u8; video/mp4 mp4 m4s; }}\n\
               server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
            root = root.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf)?;
        let child = Command::new(bin)
            .args(["-p", &d.to_string(), "-c", &dir.join("nginx.conf").display().to_string(), "-e"])
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx")?;
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                bail!("nginx did not listen on {port}: {log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Nginx { base: format!("http://127.0.0.1:{port}"), pid, child, dir })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
