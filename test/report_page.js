// test/report_page.js PAGE CLAIMS [SCREENSHOT]: renders the report page PAGE
// in headless Chromium, driven over the DevTools protocol on a pipe (no npm
// package, no browser download), and prints TAP: the page loads, logs no
// console error and throws no exception, requests nothing but itself, its
// text shows every claim of CLAIMS (one a line, from uplift_summary()), and
// every SVG renders with a nonzero size.  SCREENSHOT, if given, receives a
// PNG of the whole page.  Exits non-zero on any failure.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [pagePath, claimsPath, screenshotPath] = process.argv.slice(2);
const pageUrl = 'file://' + path.resolve(pagePath);
const claims = fs.readFileSync(claimsPath, 'utf8').split('\n').filter((line) => line.length > 0);
const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'report-page-chromium-'));

// The flags a root, offline, headless run needs, and a fresh profile.
const browser = spawn(process.env.CHROMIUM || 'chromium', [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--user-data-dir=' + profileDir, '--remote-debugging-pipe', '--window-size=1200,900', 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
const exited = new Promise((resolve) => browser.on('exit', resolve));
let browserLog = '';
browser.stderr.on('data', (chunk) => { browserLog += chunk; });

const toBrowser = browser.stdio[3];
const fromBrowser = browser.stdio[4];
let nextId = 1;
const pending = new Map();
const listeners = [];
let buffered = '';

// The protocol's messages are JSON texts, each ended by a NUL byte.
fromBrowser.on('data', (chunk) => {
    buffered += chunk.toString('utf8');
    let end;
    while ((end = buffered.indexOf('\0')) >= 0) {
        const message = JSON.parse(buffered.slice(0, end));
        buffered = buffered.slice(end + 1);
        if (message.id !== undefined && pending.has(message.id)) {
            const { resolve, reject } = pending.get(message.id);
            pending.delete(message.id);
            if (message.error) reject(new Error(JSON.stringify(message.error)));
            else resolve(message.result);
        } else if (message.method) {
            listeners.forEach((listener) => listener(message));
        }
    }
});

// send sends one command (to the page's session if given) and resolves to its result.
function send(method, params = {}, sessionId = undefined) {
    const id = nextId++;
    const message = { id, method, params };
    if (sessionId) message.sessionId = sessionId;
    toBrowser.write(JSON.stringify(message) + '\0');
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

// waitFor resolves to the first event named method of the session.
function waitFor(method, sessionId) {
    return new Promise((resolve) => {
        const listener = (message) => {
            if (message.method === method && message.sessionId === sessionId) {
                listeners.splice(listeners.indexOf(listener), 1);
                resolve(message.params);
            }
        };
        listeners.push(listener);
    });
}

let failures = 0;
let tests = 0;
// ok prints one TAP line, with the details of a failure.
function ok(passed, name, details) {
    tests += 1;
    console.log(`${passed ? 'ok' : 'not ok'} ${tests} - ${name}`);
    if (!passed) {
        failures += 1;
        if (details) console.log(String(details).split('\n').map((line) => '#   ' + line).join('\n'));
    }
}

// main loads the page in a new tab, records what it logs and requests, and checks what it shows.
async function main() {
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    const errors = [];
    const requests = [];
    listeners.push((message) => {
        if (message.sessionId !== sessionId) return;
        const p = message.params;
        if (message.method === 'Runtime.exceptionThrown') {
            errors.push('exception: ' + (p.exceptionDetails.exception?.description || p.exceptionDetails.text));
        } else if (message.method === 'Runtime.consoleAPICalled' && ['error', 'assert', 'warning'].includes(p.type)) {
            errors.push(`console.${p.type}: ` + p.args.map((a) => a.value ?? a.description).join(' '));
        } else if (message.method === 'Log.entryAdded' && ['error', 'warning'].includes(p.entry.level)) {
            errors.push(`${p.entry.source} ${p.entry.level}: ${p.entry.text} ${p.entry.url || ''}`);
        } else if (message.method === 'Network.requestWillBeSent') {
            requests.push(p.request.url);
        }
    });
    for (const domain of ['Page', 'Runtime', 'Log', 'Network']) await send(domain + '.enable', {}, sessionId);
    const loaded = waitFor('Page.loadEventFired', sessionId);
    const navigation = await send('Page.navigate', { url: pageUrl }, sessionId);
    ok(!navigation.errorText, 'the page loads', navigation.errorText);
    await loaded;
    // let anything the page would start after its load event show itself
    await new Promise((resolve) => setTimeout(resolve, 500));

    const { result } = await send('Runtime.evaluate', {
        returnByValue: true,
        expression: `JSON.stringify({
            title: document.title,
            text: document.body ? document.body.innerText : '',
            svgs: Array.from(document.querySelectorAll('svg')).map((svg) => {
                const box = svg.getBoundingClientRect();
                return { width: box.width, height: box.height, label: svg.getAttribute('aria-label') || '',
                         shapes: svg.querySelectorAll('rect, line, circle, path').length };
            }),
            width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight })`,
    }, sessionId);
    const page = JSON.parse(result.value);

    ok(errors.length === 0, 'no console error, warning or exception', errors.join('\n'));
    const external = requests.filter((url) => url !== pageUrl);
    ok(external.length === 0, 'no request but the page itself', external.join('\n'));
    ok(page.title.length > 0, `the page has a title (${page.title})`);
    const text = page.text.replace(/\s+/g, ' ');
    ok(claims.length > 0, `uplift_summary() has claims to look for (${claims.length})`);
    for (const claim of claims) ok(text.includes(claim), `the page shows: ${claim}`);
    ok(page.svgs.length > 0, `the page has charts (${page.svgs.length} SVGs)`);
    page.svgs.forEach((svg, i) => ok(svg.width > 0 && svg.height > 0 && svg.shapes > 0,
        `SVG ${i + 1} (${svg.label}) renders at ${Math.round(svg.width)}x${Math.round(svg.height)} with ${svg.shapes} shapes`));
    ok(page.width <= 1200, `nothing overflows the 1200-pixel window sideways (${page.width})`);

    if (screenshotPath) {
        await send('Emulation.setDeviceMetricsOverride',
                   { width: 1200, height: Math.ceil(page.height), deviceScaleFactor: 1, mobile: false }, sessionId);
        const shot = await send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true }, sessionId);
        fs.writeFileSync(screenshotPath, Buffer.from(shot.data, 'base64'));
    }
    await send('Browser.close');
}

const timeout = setTimeout(() => {
    ok(false, 'the browser answers within 60 seconds', browserLog);
    browser.kill('SIGKILL');
}, 60000);
main().catch((error) => ok(false, 'the browser session runs', error.stack + '\n' + browserLog))
    .finally(async () => {
        clearTimeout(timeout);
        browser.kill();
        await exited;
        fs.rmSync(profileDir, { recursive: true, force: true });
        console.log(`1..${tests}`);
        process.exitCode = failures > 0 ? 1 : 0;
    });
