package ghclient

import (
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v4"

	"github.com/chimaops/chima/sdk"
)

// The secrets a plugin reads from its environment (chima.yaml
// plugins[].secrets), and the settings that name a GitHub App.
const (
	SecretToken      = "GITHUB_TOKEN"
	SecretPrivateKey = "GITHUB_APP_PRIVATE_KEY"

	SettingAppID          = "github_app_id"
	SettingInstallationID = "github_installation_id"
)

// Auth is how a plugin authenticates to GitHub: a token, or a GitHub App's
// installation, whose tokens ghinstallation makes from a JWT signed with
// the app's private key. The zero value authenticates not at all.
type Auth struct {
	// Token is a personal or fine-grained token, sent as a Bearer token.
	Token string
	// AppID and InstallationID name the app and its installation on an
	// organisation or account; PrivateKey is the app's RSA key in PEM.
	AppID, InstallationID int64
	PrivateKey            []byte
}

// Configured says whether the plugin can call the API at all.
func (a Auth) Configured() bool { return a.Token != "" || a.AppID != 0 }

// App says whether the plugin signs in as a GitHub App's installation.
func (a Auth) App() bool { return a.AppID != 0 }

// ReadAuth reads how a plugin authenticates to GitHub: with the secret
// GITHUB_TOKEN, as a GitHub App's installation (the settings github_app_id
// and github_installation_id, given here, and the secret
// GITHUB_APP_PRIVATE_KEY), or not at all; env reads the secrets. Both, or an
// app configured by half, is a problem naming what is missing, keyed by the
// setting to fix. The private key is never quoted back.
func ReadAuth(appID, installationID int64, env func(string) string) (Auth, []sdk.Problem) {
	var problems []sdk.Problem
	add := func(key, format string, args ...any) {
		problems = append(problems, sdk.Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	auth := Auth{Token: env(SecretToken), AppID: appID, InstallationID: installationID}
	key := strings.TrimSpace(env(SecretPrivateKey))
	if !strings.Contains(key, "\n") {
		// A PEM pasted into one line of an environment file, its line
		// breaks written \n.
		key = strings.ReplaceAll(key, `\n`, "\n")
	}
	if appID == 0 && installationID == 0 && key == "" {
		return auth, nil
	}
	if auth.Token != "" {
		add(SettingAppID, "a GitHub App and the secret %s are both configured: authenticate with one, the app (%s, %s and the secret %s) or the token",
			SecretToken, SettingAppID, SettingInstallationID, SecretPrivateKey)
	}
	switch {
	case appID < 0:
		add(SettingAppID, "%d is not an app's id: the App ID of the app's settings page on GitHub", appID)
	case appID == 0:
		add(SettingAppID, "is required for a GitHub App: the App ID of the app's settings page on GitHub")
	}
	switch {
	case installationID < 0:
		add(SettingInstallationID, "%d is not an installation's id", installationID)
	case installationID == 0:
		add(SettingInstallationID, "is required for a GitHub App: the id of its installation on the organisation or account (the number that ends the installation's settings URL)")
	}
	if key == "" {
		add(SettingAppID, "the GitHub App needs its private key: give the plugin the secret %s (plugins[].secrets: {%s: CHIMA_%s}), the PEM file GitHub generated for the app",
			SecretPrivateKey, SecretPrivateKey, SecretPrivateKey)
	} else if _, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(key)); err != nil {
		// The parser's error names no part of the key.
		add(SettingAppID, "the secret %s is not the app's RSA private key in PEM (-----BEGIN RSA PRIVATE KEY-----…): %v", SecretPrivateKey, err)
	}
	if len(problems) > 0 {
		return Auth{}, problems
	}
	auth.PrivateKey = []byte(key)
	return auth, nil
}
