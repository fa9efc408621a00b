#!/usr/bin/env bash
# openwrt/test-luci.sh — check luci-app-openpush without a router.
#
# Usage: openwrt/test-luci.sh [TARGET]   (the openpush package it installs beside; default
#        x86_64-unknown-linux-musl)
#   1. the view parses (`node --check`), and runs: under stand-ins for LuCI's view, form, rpc,
#      poll and ui modules, render() builds the service box and the form; every UCI option it
#      sets is one /etc/config/openpush documents, each placeholder is the documented default,
#      and the public URL check takes URLs and refuses what the init script would refuse,
#   2. the menu and ACL JSON parse; the menu opens view/openpush.js and depends on the ACL,
#      which grants the UCI config and exactly the ubus calls the view declares,
#   3. scripts/build-luci.sh makes the .apk and .ipk; the .apk installs in a scratch root
#      beside openpush (and a stand-in luci-base) with the files and modes luci.mk gives,
#      and is removed cleanly.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=${1:-x86_64-unknown-linux-musl}
export CROSS_DIR=${CROSS_DIR:-$ROOT/target/cross}
SRC=$ROOT/openwrt/luci-app-openpush
JS=$SRC/htdocs/luci-static/resources/view/openpush.js
MENU=$SRC/root/usr/share/luci/menu.d/luci-app-openpush.json
ACL=$SRC/root/usr/share/rpcd/acl.d/luci-app-openpush.json
UCI=$ROOT/openwrt/openpush/files/openpush.config
. "$ROOT/scripts/openwrt-pkg.sh"
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
command -v node >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null
}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

# --- 1. the view ---
check "node --check view/openpush.js" node --check "$JS"
cat > "$W/run-view.js" <<'EOF'
// Runs the view under stand-ins for LuCI's modules and prints what it declared, as JSON.
const fs = require('fs');
const src = fs.readFileSync(process.argv[2], 'utf8');
const out = { options: [], rpc: [], polls: 0, sections: [] };
function El(tag, attrs, children) { return { tag, attrs, children, style: {}, textContent: '' }; }
const E = (tag, attrs, children) => El(tag, attrs, children);
const _ = (s) => s;
String.prototype.format = function () { return this; };
const L = { resolveDefault: (p, d) => p.catch(() => d) };
const rpc = { declare: (d) => { out.rpc.push(d.object + '.' + d.method);
  return () => Promise.resolve({ openpush: { running: true, enabled: true } }); } };
const poll = { add: () => { out.polls++; } };
const ui = { createHandlerFn: (ctx, fn) => fn, addNotification: () => {} };
const view = { extend: (o) => o };
const uci = { load: () => Promise.resolve(['acme']),
  sections: (c, t, fn) => [{ domains: ['push.example.org', 'other.example.org'] }].forEach(fn) };
class Option {
  constructor(cls, name) { this.cls = cls; this.name = name; this.values = []; }
  value(v) { this.values.push(v); }
  depends() {}
}
class Section {
  constructor(type, name) { this.type = type; this.name = name; out.sections.push(name); }
  tab() {}
  taboption(tab, cls, name) { const o = new Option(cls, name); out.options.push(o); o.tab = tab; return o; }
  option(cls, name) { return this.taboption('', cls, name); }
}
const form = {
  Map: class { constructor(config) { out.config = config; }
    section(cls, name, type) { return new Section(type, name); }
    render() { return Promise.resolve(El('map')); } },
  NamedSection: 'NamedSection', Flag: 'Flag', Value: 'Value', ListValue: 'ListValue',
  DynamicList: 'DynamicList'
};
const v = new Function('view', 'form', 'poll', 'rpc', 'ui', 'uci', 'L', 'E', '_', src)(
  view, form, poll, rpc, ui, uci, L, E, _);
v.load().then((st) => v.render(st)).then((node) => {
  out.rendered = !!node;
  const url = out.options.find((o) => o.name === 'public_url');
  out.urlChecks = ['', 'https://push.example.org', 'http://192.168.1.1:8080', 'push.example.org',
    "https://x.org/'a", 'https://a b'].map((u) => url.validate('main', u) === true);
  out.options = out.options.map((o) => ({ name: o.name, cls: o.cls, placeholder: o.placeholder,
    datatype: o.datatype, values: o.values, default: o.default }));
  console.log(JSON.stringify(out));
}).catch((e) => { console.error(e); process.exit(1); });
EOF
if node "$W/run-view.js" "$JS" > "$W/view.json" 2> "$W/view.err"; then
  ok "the view loads and renders under LuCI stand-ins"
else bad "the view: $(cat "$W/view.err")"; fi
q() { node -e "const o=require('$W/view.json'); $1"; }
check "the form edits UCI config openpush, section main" \
  test "$(q "console.log(o.config + ' ' + o.sections.join(','))")" = "openpush main"
check "the service box polls the state" test "$(q 'console.log(o.polls)')" -ge 1
n=0 failed_before=$failed
while read -r name placeholder; do
  n=$((n + 1))
  grep -qE "^[[:space:]]*#?(option|list) $name " "$UCI" || bad "view option $name is not in /etc/config/openpush"
  [ -z "$placeholder" ] && continue
  [ "$name" = public_url ] && continue
  doc=$(sed -En "s/^[[:space:]]*#?(option|list) $name '(.*)'.*/\2/p" "$UCI" | head -1)
  [ "$doc" = "$placeholder" ] || bad "view placeholder of $name '$placeholder', documented default '$doc'"
done < <(q "o.options.forEach(x => console.log(x.name + ' ' + (x.placeholder || '')))")
[ "$n" -gt 5 ] && [ "$failed" = "$failed_before" ] && ok "all $n view options are documented UCI options, placeholders their defaults" || bad "only $n options"
while read -r name values; do
  [ "$name" = acme_domain ] && continue   # the acme package's certificates, offered
  for v in $values; do
    grep -q "$v" <(sed -n "/option $name /,/^\$/p" "$UCI"; grep -B12 "option $name " "$UCI") ||
      bad "$name value $v not documented"
  done
done < <(q "o.options.filter(x => x.values.length).forEach(x => console.log(x.name + ' ' + x.values.join(' ')))")
check "HTTPS: the acme package's certificates are offered" \
  test "$(q "console.log(o.options.find(x => x.name === 'acme_domain').values.join(' '))")" = "push.example.org other.example.org"
check "public URL check: takes empty and http(s) URLs, refuses bare hosts, quotes, spaces" \
  test "$(q 'console.log(o.urlChecks.join(","))')" = "true,true,true,false,false,false"

# --- 2. menu and ACL ---
for f in "$MENU" "$ACL"; do
  check "${f##*/} parses as JSON" node -e "JSON.parse(require('fs').readFileSync('$f','utf8'))"
done
check "menu: admin/services/openpush opens view openpush (view/openpush.js)" \
  test "$(node -e "const m=require('$MENU')['admin/services/openpush']; console.log(m.action.type+' '+m.action.path)")" = "view openpush"
check "menu depends on the ACL luci-app-openpush, which exists" \
  node -e "const m=require('$MENU')['admin/services/openpush']; const a=require('$ACL');
    process.exit(m.depends.acl.every(x => a[x]) ? 0 : 1)"
acl_ubus=$(node -e "const a=require('$ACL')['luci-app-openpush']; const r=[];
  for (const k of ['read','write']) for (const [o,ms] of Object.entries((a[k]||{}).ubus||{})) ms.forEach(m=>r.push(o+'.'+m));
  console.log([...new Set(r)].sort().join(' '))")
view_ubus=$(q "console.log([...new Set(o.rpc)].sort().join(' '))")
check "ACL grants exactly the ubus calls the view makes ($view_ubus)" test "$acl_ubus" = "$view_ubus"
check "ACL reads and writes UCI openpush" node -e "const a=require('$ACL')['luci-app-openpush'];
  process.exit(a.read.uci.includes('openpush') && a.write.uci.includes('openpush') ? 0 : 1)"

# --- 3. packages ---
"$ROOT/scripts/build-luci.sh" > "$W/build.out"
cat "$W/build.out"
VERSION=$(openwrt_version)
LAPK=$CROSS_DIR/apk/noarch/luci-app-openpush-$VERSION-r1.apk
LIPK=$CROSS_DIR/ipk/luci-app-openpush_$VERSION-1_all.ipk
check "build-luci.sh makes the .apk and the .ipk" test -s "$LAPK" -a -s "$LIPK"
mkdir -p "$W/ipk" && tar -xzf "$LIPK" -C "$W/ipk"
listing=$(tar -tvzf "$W/ipk/data.tar.gz")
for f in www/luci-static/resources/view/openpush.js usr/share/luci/menu.d/luci-app-openpush.json \
         usr/share/rpcd/acl.d/luci-app-openpush.json; do
  echo "$listing" | grep -qE -- "^-rw-r--r-- 0/0 .* \./$f\$" || bad "ipk lacks $f (0644)"
done
check "ipk control: Architecture all, depends on luci-base and openpush" \
  grep -q '^Depends: libc, luci-base, openpush$' <(tar -xzOf "$W/ipk/control.tar.gz" ./control)
APK=$("$ROOT/scripts/apk-tools.sh")
BASE=$W/luci-base && mkdir -p "$BASE/files/www"
"$APK" mkpkg --info name:luci-base --info version:1-r1 --info arch:noarch \
  --info "description:stand-in" --files "$BASE/files" --output "$W/luci-base-1-r1.apk"
[ -x "$CROSS_DIR/out/$T/openpush" ] || "$ROOT/scripts/cross-build.sh" "$T" >/dev/null
ARCH=$(openwrt_arch "$T")
"$ROOT/scripts/build-apk.sh" "$T" > /dev/null
R=$W/root && mkdir -p "$R/etc/apk"
echo "$ARCH" > "$R/etc/apk/arch"
apk_r() { "$APK" --root "$R" --allow-untrusted --no-network --no-cache "$@"; }
if apk_r add --initdb --no-scripts "$W/luci-base-1-r1.apk" "$CROSS_DIR/apk/$ARCH/openpush-$VERSION-r1.apk" \
     "$LAPK" > "$W/add.out" 2>&1; then ok "apk add luci-app-openpush beside openpush and luci-base"
else bad "apk add: $(cat "$W/add.out")"; fi
for f in www/luci-static/resources/view/openpush.js usr/share/luci/menu.d/luci-app-openpush.json \
         usr/share/rpcd/acl.d/luci-app-openpush.json; do
  [ "$(stat -c '%a %u' "$R/$f" 2>/dev/null)" = "644 0" ] || bad "installed $f: $(stat -c '%a %u' "$R/$f" 2>&1)"
done
check "installed files are the source's" cmp -s "$R/www/luci-static/resources/view/openpush.js" "$JS"
if apk_r del --no-scripts luci-app-openpush > "$W/del.out" 2>&1 && [ ! -e "$R/www/luci-static/resources/view/openpush.js" ] &&
   [ -x "$R/usr/bin/openpush" ]; then ok "apk del luci-app-openpush removes its files, openpush stays"
else bad "apk del: $(cat "$W/del.out")"; fi

echo "luci-app-openpush: $passed passed, $failed failed"
[ "$failed" = 0 ]
