# openwrt/scratch-root.sh — sourced by openwrt/test-apk.sh and openwrt/test-ipk.sh.
# scratch_root DIR ARCH: a router root to install packages into and run their scripts in,
# chrooted: Debian's static busybox as /bin/sh and the tools, /etc/passwd, group and shadow
# with root only, and small stand-ins for the router's /lib/functions.sh (add_group_and_user,
# default_postinst, default_prerm, as OpenWrt's behave, for apk and opkg packages alike) and
# /etc/rc.common (enable/disable make the rc.d links; start/stop/restart/running are recorded
# in /var/log/rc.log, and a started service is "running", with the binary it started, until
# stopped).
scratch_root() {
local R=$1 ARCH=$2
mkdir -p "$R"/{bin,sbin,usr/bin,lib,etc/rc.d,etc/apk,var/log,var/run,tmp,proc,dev}
cp /bin/busybox "$R/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
echo "$ARCH" > "$R/etc/apk/arch"
printf 'root:x:0:0:root:/root:/bin/ash\n' > "$R/etc/passwd"
printf 'root:x:0:\n' > "$R/etc/group"
printf 'root:::0:99999:7:::\n' > "$R/etc/shadow"
cat > "$R/lib/functions.sh" <<'EOF'
# Stand-in for OpenWrt's /lib/functions.sh: the package hooks' part, as the router's behaves.
add_group_and_user() {
	local rusers tuple u g uid gid
	rusers=$(cat "$root/lib/apk/packages/$pkgname.rusers" 2>/dev/null ||
		sed -n 's/^Require-User: *//p' "$root/usr/lib/opkg/info/$pkgname.control" 2>/dev/null)
	for tuple in $rusers; do
		u=${tuple%%:*} g=${tuple#*:}
		uid=${u#*=} u=${u%%=*} gid=${g#*=} g=${g%%=*}
		grep -qs "^$g:" "$root/etc/group" || echo "$g:x:$gid:" >> "$root/etc/group"
		grep -qs "^$u:" "$root/etc/passwd" ||
			echo "$u:x:$uid:$gid:$u:/var/run/$u:/bin/false" >> "$root/etc/passwd"
	done
}
pkg_filelist() {
	if [ -f "$root/lib/apk/packages/$pkgname.list" ]; then
		echo "$root/lib/apk/packages/$pkgname.list"
	else
		echo "$root/usr/lib/opkg/info/$pkgname.list"
	fi
}
default_postinst() {
	local root="${IPKG_INSTROOT}" i
	[ -n "$pkgname" ] || local pkgname="$(basename ${1%.*})"
	[ -e "$root/usr/lib/opkg/info/$pkgname.list" ] && add_group_and_user
	if [ -f "$root/usr/lib/opkg/info/$pkgname.postinst-pkg" ]; then
		( . "$root/usr/lib/opkg/info/$pkgname.postinst-pkg" )
	fi
	for i in $(grep -s '^/etc/init.d/' "$(pkg_filelist)"); do
		[ "$PKG_UPGRADE" = 1 ] || "$i" enable
		"$i" start
	done
	return 0
}
default_prerm() {
	local root="${IPKG_INSTROOT}" i
	[ -n "$pkgname" ] || local pkgname="$(basename ${1%.*})"
	for i in $(grep -s '^/etc/init.d/' "$(pkg_filelist)"); do
		[ "$PKG_UPGRADE" = 1 ] || "$i" disable
		"$i" stop
	done
	return 0
}
EOF
cat > "$R/etc/rc.common" <<'EOF'
#!/bin/sh
# Stand-in for OpenWrt's /etc/rc.common: enable/disable as the router's; the procd commands
# are recorded, and a started service is "running" until stopped.
initscript=$1 action=$2
. "$initscript"
name=${initscript##*/}
echo "$name $action${PKG_UPGRADE:+ (upgrade)}" >> /var/log/rc.log
case $action in
	enable) ln -sf "../init.d/$name" "/etc/rc.d/S$START$name"; ln -sf "../init.d/$name" "/etc/rc.d/K$STOP$name" ;;
	disable) rm -f /etc/rc.d/S??"$name" /etc/rc.d/K??"$name" ;;
	start|restart) cp /usr/bin/openpush "/var/run/$name.running" ;;
	stop) rm -f "/var/run/$name.running" ;;
	running) [ -e "/var/run/$name.running" ] ;;
esac
EOF
chmod 0755 "$R/etc/rc.common"
}
