#!/usr/bin/env node
// End-to-end check of the admin page in a real headless Chromium (Debian's), driven by
// puppeteer-core over the DevTools protocol: the page's QR encoder against jsQR for every
// length it takes; then the real binary on a fresh database, where the browser logs in as
// the administrator, adds a user, sees a phone (an ntfy subscriber this script starts as
// that user) connect in the live status, reads the "add a phone" QR code back from a
// screenshot, deletes the user (the phone's stream ends) and logs out, leaving nothing in
// the browser's storage. A user who is not an administrator is refused. Nothing may
// violate the page's Content-Security-Policy or log an error to the console.
//
// Usage: node admin.cjs OPENPUSH_BIN OUT_DIR   (scripts/admin-browser.sh installs the
// pinned modules and sets NODE_PATH; CHROMIUM overrides /usr/bin/chromium). Screenshots go
// to OUT_DIR as admin-*.png. Prints "N passed, 0 failed" and exits 0 when all passed.
"use strict";

const assert = require("node:assert/strict");
const childProcess = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");
const vm = require("node:vm");

const jsQR = require("jsqr");
const { PNG } = require("pngjs");
const puppeteer = require("puppeteer-core");

const [binary, outDir] = process.argv.slice(2);
if (!binary || !outDir) {
  console.error("usage: admin.cjs OPENPUSH_BIN OUT_DIR");
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 10000;
const ADMIN = { name: "admin", password: "correct horse battery" };
const NEW_USER = { name: "grandma", password: "knitting-1957" };
const BEN = { name: "ben", password: "ben's password" };
// What phones are told to enter; the browser itself reaches the server on 127.0.0.1.
const PUBLIC_URL = "https://push.example.org";
const PAGE_DIR = path.join(__dirname, "..", "..", "src", "doors", "admin", "page");

let passed = 0;
let failed = 0;
async function check(name, f) {
  try {
    await f();
    passed++;
    console.log("ok    " + name);
  } catch (e) {
    failed++;
    console.log("FAIL  " + name + "\n      " + (e.stack || e).toString().split("\n").join("\n      "));
  }
}

// The page's encoder, in a context of its own, against jsQR at 4 pixels a module.
function qrRoundTrips() {
  const context = { TextEncoder };
  vm.createContext(context);
  vm.runInContext(fs.readFileSync(path.join(PAGE_DIR, "qr.js"), "utf8") + "\nthis.qrModules = qrModules;", context);
  const base = "https://push.example.org:8443/" + "ümlaut-".repeat(40);
  for (let len = 1; len <= 211; len++) {
    const text = Buffer.from(base).subarray(0, len).toString().replace(/\uFFFD$/, "");
    const grid = context.qrModules(text);
    assert.ok(grid, "no symbol for " + len + " bytes");
    assert.equal(decodeGrid(grid), text, "version " + (grid.length - 17) / 4);
  }
  assert.equal(context.qrModules("x".repeat(214)), null, "214 bytes do not fit version 10-M");
}

function decodeGrid(grid) {
  const scale = 4;
  const size = (grid.length + 8) * scale;
  const rgba = new Uint8ClampedArray(size * size * 4).fill(255);
  grid.forEach((row, y) => row.forEach((dark, x) => {
    if (!dark) return;
    for (let dy = 0; dy < scale; dy++) {
      for (let dx = 0; dx < scale; dx++) {
        const i = (((y + 4) * scale + dy) * size + (x + 4) * scale + dx) * 4;
        rgba[i] = rgba[i + 1] = rgba[i + 2] = 0;
      }
    }
  }));
  const code = jsQR(rgba, size, size);
  return code && code.data;
}

// The binary on a fresh database in a temporary directory, on 127.0.0.1 and a free port.
class Server {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "openpush-admin-"));
    this.config = path.join(this.dir, "openpush.conf");
    const lines = ["db = " + path.join(this.dir, "openpush.redb"), "listen = 127.0.0.1:0", "public_url = " + PUBLIC_URL];
    fs.writeFileSync(this.config, lines.join("\n") + "\n");
    this.log = [];
  }

  cli(args, stdin) {
    const out = childProcess.spawnSync(binary, args.concat(["--config", this.config]), { input: stdin, encoding: "utf8", timeout: TIMEOUT });
    assert.equal(out.status, 0, "openpush " + args.join(" ") + ": " + out.stderr);
    return out.stdout.trim();
  }

  start() {
    this.proc = childProcess.spawn(binary, ["serve", "--config", this.config], { stdio: ["ignore", "pipe", "pipe"] });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the server did not say where it listens:\n" + this.log.join("\n"))), TIMEOUT);
      const read = (chunk) => {
        for (const line of chunk.toString().split("\n").filter(Boolean)) {
          this.log.push(line);
          const found = line.match(/listening on http:\/\/(\S+)/);
          if (found) {
            clearTimeout(timer);
            this.url = "http://" + found[1];
            resolve();
          }
        }
      };
      this.proc.stdout.on("data", read);
      this.proc.stderr.on("data", read);
    });
  }

  stop() {
    if (this.proc) this.proc.kill("SIGTERM");
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// An ntfy subscriber (the ntfy app's /json stream) as `user`: resolves once its `open`
// event came; `ended` resolves when the server closes the stream.
function subscribe(url, user, topic) {
  return new Promise((resolve, reject) => {
    const auth = "Basic " + Buffer.from(user.name + ":" + user.password).toString("base64");
    const req = http.get(url + "/" + topic + "/json", { headers: { Authorization: auth } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error("subscribe: " + res.statusCode));
      let ended;
      const endedPromise = new Promise((r) => { ended = r; });
      res.on("data", (chunk) => {
        if (chunk.toString().includes("\"open\"")) resolve({ req, ended: endedPromise });
      });
      res.on("end", () => ended());
      res.on("error", () => ended());
    });
    req.on("error", reject);
    req.setTimeout(TIMEOUT * 3);
  });
}

function withTimeout(promise, what) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error("timed out: " + what)), TIMEOUT))]);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(outDir, "admin-" + name + ".png") });
}

async function go(page, view) {
  await page.evaluate((v) => { location.hash = "#" + v; }, view);
  await page.waitForSelector("#" + view + ":not([hidden])", { timeout: TIMEOUT });
}

async function login(page, url, user) {
  await page.goto(url + "/admin/", { waitUntil: "networkidle0" });
  await page.waitForSelector("#login:not([hidden])", { timeout: TIMEOUT });
  await page.type("#login-form [name=user]", user.name);
  await page.type("#login-form [name=secret]", user.password);
  await page.click("#login-form button");
}

async function browserChecks(server, browser) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 760 });
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("dialog", (d) => d.accept());
  await page.evaluateOnNewDocument(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.violations = (window.violations || []).concat(e.violatedDirective + " " + e.blockedURI);
    });
  });
  const url = server.url;

  await check("the page loads gzipped with its security headers", async () => {
    const response = await page.goto(url + "/admin/", { waitUntil: "networkidle0" });
    const headers = response.headers();
    assert.equal(headers["content-encoding"], "gzip");
    assert.match(headers["content-security-policy"], /default-src 'none'/);
    assert.match(headers["content-security-policy"], /frame-ancestors 'none'/);
    assert.equal(headers["x-content-type-options"], "nosniff");
    assert.equal(headers["referrer-policy"], "no-referrer");
    await page.waitForSelector("#login:not([hidden])", { timeout: TIMEOUT });
    await shot(page, "login");
  });

  await check("a user who is not an administrator is refused", async () => {
    await login(page, url, BEN);
    await page.waitForFunction(() => document.getElementById("message").textContent.includes("not an administrator"), { timeout: TIMEOUT });
    assert.ok(await page.$("#login:not([hidden])"));
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    // The refusal itself is logged by Chromium as a failed load: expected here only.
    problems.length = 0;
  });

  await check("the administrator logs in and sees the live status", async () => {
    await login(page, url, ADMIN);
    await page.waitForSelector("#status:not([hidden]) #status-server dd", { timeout: TIMEOUT });
    const text = await page.$eval("#status-server", (el) => el.textContent);
    assert.match(text, /0\.1\.0/);
  });

  await check("the administrator adds a user", async () => {
    await go(page, "users");
    await page.type("#user-add [name=name]", NEW_USER.name);
    await page.type("#user-add [name=password]", NEW_USER.password);
    await page.click("#user-add button");
    await page.waitForSelector("details[data-user=" + NEW_USER.name + "]", { timeout: TIMEOUT });
  });

  let phone;
  await check("a phone of the new user connects and shows in the live status", async () => {
    phone = await withTimeout(subscribe(url, NEW_USER, "family"), "the ntfy subscription");
    await go(page, "status");
    await page.waitForFunction((name) => {
      const cell = document.querySelector("[data-streams='" + name + "']");
      return cell && cell.textContent === "1";
    }, { timeout: TIMEOUT }, NEW_USER.name);
    const row = await page.$eval("[data-streams='" + NEW_USER.name + "']", (el) => el.closest("tr").textContent);
    assert.match(row, /ntfy 1/);
    await shot(page, "status");
  });

  await check("the topics and users views show the new user's topic and device setup", async () => {
    await go(page, "topics");
    await page.waitForFunction(() => document.getElementById("topics-list").textContent.includes("family"), { timeout: TIMEOUT });
    await go(page, "users");
    await page.waitForSelector("details[data-user=" + NEW_USER.name + "]", { timeout: TIMEOUT });
    await page.$eval("details[data-user=" + NEW_USER.name + "]", (el) => { el.open = true; });
    assert.match(await page.$eval("details[data-user=" + NEW_USER.name + "]", (el) => el.textContent), /family/);
    await shot(page, "users");
  });

  await check("add a phone: the QR code read from the screen is the server URL", async () => {
    await go(page, "phone");
    await page.waitForSelector("#server-qr svg", { timeout: TIMEOUT });
    await page.select("#phone-user", NEW_USER.name);
    const shown = await page.$eval("#server-url", (el) => el.textContent);
    assert.equal(shown, PUBLIC_URL);
    assert.equal(await page.$eval("#setup-autopush code.ws", (el) => el.textContent), "wss://push.example.org/");
    assert.equal(await page.$eval("#setup-ntfy code.user", (el) => el.textContent), NEW_USER.name);
    const qr = await page.$("#server-qr svg");
    const png = PNG.sync.read(await qr.screenshot());
    const code = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
    assert.ok(code, "no QR code found in the screenshot");
    assert.equal(code.data, PUBLIC_URL);
    await shot(page, "phone");
  });

  await check("deleting the user ends its phone's stream and removes it from the status", async () => {
    await go(page, "users");
    await page.waitForSelector("details[data-user=" + NEW_USER.name + "]", { timeout: TIMEOUT });
    await page.$eval("details[data-user=" + NEW_USER.name + "]", (el) => { el.open = true; });
    const remove = await page.$("details[data-user=" + NEW_USER.name + "] .actions button.danger");
    await remove.click();
    await page.waitForFunction((name) => !document.querySelector("details[data-user='" + name + "']"), { timeout: TIMEOUT }, NEW_USER.name);
    await withTimeout(phone.ended, "the end of the deleted user's stream");
    await go(page, "status");
    await page.waitForSelector("#status-users td", { timeout: TIMEOUT });
    assert.doesNotMatch(await page.$eval("#status-users", (el) => el.textContent), new RegExp(NEW_USER.name));
  });

  await check("logging out leaves no credentials in the browser", async () => {
    await page.click("#logout");
    await page.waitForSelector("#login:not([hidden])", { timeout: TIMEOUT });
    const storage = await page.evaluate(() => [sessionStorage.length, localStorage.length, document.cookie]);
    assert.deepEqual(storage, [0, 0, ""]);
    const cookies = await browser.cookies();
    assert.deepEqual(cookies, []);
  });

  await check("no CSP violation and no console error", async () => {
    const violations = await page.evaluate(() => window.violations || []);
    assert.deepEqual(violations.concat(problems), []);
  });
  await page.close();
}

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  await check("the page's QR encoder round-trips every length of versions 1 to 10 (jsQR)", qrRoundTrips);
  const server = new Server();
  let browser;
  try {
    server.cli(["user", "add", ADMIN.name, "--admin", "--password-stdin"], ADMIN.password + "\n");
    server.cli(["user", "add", BEN.name, "--password-stdin"], BEN.password + "\n");
    await server.start();
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage", "--lang=en-GB"],
      env: { ...process.env, TZ: "UTC", LANG: "en_GB.UTF-8" },
    });
    await browserChecks(server, browser);
  } catch (e) {
    failed++;
    console.log("FAIL  setup\n      " + (e.stack || e));
  } finally {
    if (browser) await browser.close();
    server.stop();
  }
  if (failed) console.log("server log:\n" + server.log.join("\n"));
  console.log(passed + " passed, " + failed + " failed");
  process.exit(failed ? 1 : 0);
}

main();
