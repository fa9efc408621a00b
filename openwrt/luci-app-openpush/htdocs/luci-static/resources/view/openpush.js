'use strict';
'require view';
'require form';
'require poll';
'require rpc';
'require ui';
'require uci';

// openpush in LuCI (Services -> openpush): the service's state and controls, and the UCI
// options of /etc/config/openpush that a household changes. Saving applies them: the init
// script's reload trigger renders the server's config again and procd restarts the server
// only if it changed. Every option shown here is one documented in /etc/config/openpush.

var callRcList = rpc.declare({
	object: 'rc',
	method: 'list',
	params: [ 'name' ],
	expect: { '': {} }
});

var callRcInit = rpc.declare({
	object: 'rc',
	method: 'init',
	params: [ 'name', 'action' ],
	expect: { '': {} }
});

function serviceState() {
	return L.resolveDefault(callRcList('openpush'), {}).then(function(res) {
		var s = res.openpush || {};
		return { running: !!s.running, enabled: !!s.enabled };
	});
}

function renderState(node, st) {
	var text = st.running ? _('running') : _('stopped');
	var boot = st.enabled ? _('starts at boot') : _('does not start at boot');
	node.textContent = text + ', ' + boot;
	node.style.color = st.running ? 'green' : 'red';
}

function serviceAction(action) {
	return callRcInit('openpush', action).then(function() {
		return serviceState();
	}).catch(function(err) {
		ui.addNotification(null, E('p', _('openpush %s failed: %s').format(action, err)), 'error');
		return serviceState();
	});
}

return view.extend({
	load: function() {
		// The acme package's certificates, offered for HTTPS when it is installed.
		return Promise.all([ serviceState(), L.resolveDefault(uci.load('acme'), null) ]);
	},

	render: function(data) {
		var st = data[0], view = this, m, s, o;
		var acmeDomains = [];
		if (data[1] != null)
			uci.sections('acme', 'cert', function(c) {
				[].concat(c.domains || []).forEach(function(d) { acmeDomains.push(d); });
			});
		var stateNode = E('span', { 'id': 'openpush-state' }, [ '' ]);
		renderState(stateNode, st);

		var button = function(label, action, style) {
			return E('button', {
				'class': 'btn cbi-button ' + style,
				'click': ui.createHandlerFn(view, function() {
					return serviceAction(action).then(function(nst) { renderState(stateNode, nst); });
				})
			}, [ label ]);
		};

		var status = E('div', { 'class': 'cbi-section' }, [
			E('h3', {}, [ _('Service') ]),
			E('p', {}, [ _('openpush is') + ' ', stateNode ]),
			E('div', { 'class': 'cbi-section-actions' }, [
				button(_('Start'), 'start', 'cbi-button-apply'), ' ',
				button(_('Restart'), 'restart', 'cbi-button-reload'), ' ',
				button(_('Stop'), 'stop', 'cbi-button-reset'), ' ',
				button(_('Start at boot'), 'enable', 'cbi-button-action'), ' ',
				button(_('Do not start at boot'), 'disable', 'cbi-button-neutral')
			]),
			E('p', { 'class': 'cbi-section-descr' }, [
				_('Users and phones are added on the router: openpush user add NAME --config /var/etc/openpush.conf, then openpush client add --user NAME "PHONE" --config /var/etc/openpush.conf.')
			])
		]);

		poll.add(function() {
			return serviceState().then(function(nst) { renderState(stateNode, nst); });
		}, 5);

		m = new form.Map('openpush', _('openpush'),
			_('A self-hosted push server for the family\'s phones: the ntfy app, UnifiedPush, Web Push and the OpenPush API.'));

		s = m.section(form.NamedSection, 'main', 'openpush');
		s.tab('general', _('General'));
		s.tab('tls', _('HTTPS'));
		s.tab('limits', _('Limits'));

		o = s.taboption('general', form.Flag, 'enabled', _('Run the server'),
			_('Off: installed but stopped.'));
		o.rmempty = false;

		o = s.taboption('general', form.DynamicList, 'listen', _('Listen on'),
			_('Address and port, one per line: 0.0.0.0:8080 is reachable from the LAN; the WAN zone rejects it until a port forward or a reverse proxy is added. None: 127.0.0.1:8080 only.'));
		o.datatype = 'ipaddrport(1)';
		o.placeholder = '0.0.0.0:8080';

		o = s.taboption('general', form.Value, 'public_url', _('Public URL'),
			_('The server\'s address as phones and app servers reach it, through the reverse proxy: Web Push endpoints and Matrix pushkeys are built on it. Empty: each request\'s Host.'));
		o.datatype = 'string';
		o.placeholder = 'https://push.example.org';
		o.validate = function(section_id, value) {
			if (value == '' || /^https?:\/\/[^\s'"#]+$/.test(value))
				return true;
			return _('An http:// or https:// URL without spaces or quotes');
		};

		o = s.taboption('general', form.ListValue, 'storage', _('Database storage'),
			_('Flash: survives power cuts, about 33 kB written per message. RAM: no flash writes; copied back at every clean stop, a power cut loses what changed since.'));
		o.value('flash', _('Flash (/etc/openpush)'));
		o.value('ram', _('RAM, saved at clean stops'));
		o.default = 'flash';

		o = s.taboption('general', form.ListValue, 'anonymous_access', _('Requests without a user'),
			_('What apps may do without logging in. Endpoint topics are the unguessable topics UnifiedPush apps post to.'));
		o.value('none', _('Nothing (breaks UnifiedPush through the ntfy app)'));
		o.value('endpoint-write', _('Publish to endpoint topics only'));
		o.value('read-write', _('Read and publish ownerless topics (an open ntfy server)'));
		o.default = 'endpoint-write';
		o.optional = true;

		o = s.taboption('general', form.ListValue, 'log_level', _('Log level'),
			_('What goes to the system log (logread -e openpush).'));
		[ 'error', 'warn', 'info', 'debug', 'trace' ].forEach(function(l) { o.value(l); });
		o.default = 'info';
		o.optional = true;

		o = s.taboption('tls', form.DynamicList, 'listen_tls', _('HTTPS listen on'),
			_('Address and port for phones and app servers on the internet, served with the certificate below. Port 443 is usually LuCI\'s: use 8443 and open it in the wan zone. Left out until the certificate exists.'));
		o.datatype = 'ipaddrport(1)';
		o.placeholder = '0.0.0.0:8443';

		o = s.taboption('tls', form.Value, 'acme_domain', _('Certificate of the acme package'),
			acmeDomains.length
				? _('A domain of a certificate the acme package issues: its files are served, and a renewal without a restart.')
				: _('Install the acme package (luci-app-acme) and issue a certificate for the server\'s name, or give the files below.'));
		acmeDomains.forEach(function(d) { o.value(d); });
		o.datatype = 'hostname';
		o.placeholder = 'push.example.org';

		o = s.taboption('tls', form.Value, 'tls_cert', _('Certificate file (PEM)'),
			_('Instead of the acme package: the full chain, in PEM.'));
		o.datatype = 'file';
		o.depends('acme_domain', '');
		o.placeholder = '/etc/ssl/acme/push.example.org.fullchain.crt';

		o = s.taboption('tls', form.Value, 'tls_key', _('Key file (PEM)'),
			_('The certificate\'s private key, in PEM.'));
		o.datatype = 'file';
		o.depends('acme_domain', '');
		o.placeholder = '/etc/ssl/acme/push.example.org.key';

		o = s.taboption('limits', form.Value, 'max_store_bytes', _('Store budget (bytes)'),
			_('The most queued messages may take in the database, all users together. Default: 33554432 (32 MiB).'));
		o.datatype = 'uinteger';
		o.placeholder = '33554432';

		o = s.taboption('limits', form.Value, 'anonymous_store_share_percent', _('Anonymous share of the store (%)'),
			_('The part of the store budget that posts without a user may fill. Default: 25.'));
		o.datatype = 'range(0,100)';
		o.placeholder = '25';

		o = s.taboption('limits', form.Value, 'max_connections', _('Connections'),
			_('Open connections at once, streams included. Default: 20000 (capped by the open-file limit).'));
		o.datatype = 'min(1)';
		o.placeholder = '20000';

		o = s.taboption('limits', form.Value, 'max_clients_per_user', _('Devices per user'),
			_('Default: 64.'));
		o.datatype = 'min(1)';
		o.placeholder = '64';

		o = s.taboption('limits', form.Value, 'max_queued_per_client', _('Messages queued per device'),
			_('Default: 1000.'));
		o.datatype = 'min(1)';
		o.placeholder = '1000';

		o = s.taboption('limits', form.Value, 'max_body_bytes', _('Largest request body (bytes)'),
			_('Default: 65536.'));
		o.datatype = 'min(1)';
		o.placeholder = '65536';

		o = s.taboption('limits', form.Value, 'keepalive_secs', _('Keepalive (seconds)'),
			_('Between keepalives on every stream, 1 to 59: under the 60 s of common proxies. Default: 25.'));
		o.datatype = 'range(1,59)';
		o.placeholder = '25';

		return m.render().then(function(mapNode) {
			return E([], [ status, mapNode ]);
		});
	}
});
